// What context editing did to the prompt shown in "what the model sees": the `context_management` that
// POST /v1/messages/render returns (original_input_tokens and applied_edits), as lines of text.

const CLEARED = {
  clear_tool_uses_20250919: ["cleared_tool_uses", "tool use", "tool uses"],
  clear_thinking_20251015: ["cleared_thinking_turns", "thinking turn", "thinking turns"],
};

export function describeContextEdits(contextManagement) {
  if (!contextManagement) return [];
  const lines = [`context editing: ${contextManagement.original_input_tokens} tokens before the edits`];
  const applied = contextManagement.applied_edits ?? [];
  for (const edit of applied) {
    const [field, one, many] = CLEARED[edit.type] ?? ["", "", ""];
    const n = edit[field];
    const what = field ? `${n} ${n === 1 ? one : many} cleared, ` : "";
    lines.push(`${edit.type}: ${what}${edit.cleared_input_tokens} tokens`);
  }
  if (!applied.length) lines.push("no edit applied");
  return lines;
}
