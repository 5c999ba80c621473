"""The two edits as plain transformations of a request's messages (validated `schema.Message` objects): what is
cleared and how much, never the token counts (the `editor` renders and counts).

The client keeps its full history and sends it every time; nothing here is remembered between requests, so the
same history with the same edits always becomes the same prompt.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import ClearThinking, ClearToolUses

# What a cleared tool result says instead. Anthropic documents that cleared results are replaced by "placeholder
# text to let Claude know the tool result was removed" without publishing the text; this one says just that.
CLEARED_TOOL_RESULT = "[tool result cleared to save context]"
THINKING_BLOCKS = ("thinking", "redacted_thinking")


@dataclass(frozen=True)
class Cleared:
    messages: list          # the edited messages (the untouched ones are the request's own objects)
    count: int              # thinking turns, or tool use/result pairs, that were cleared


def _is_tool_results_only(message) -> bool:
    return message.role == "user" and bool(message.content) and all(
        block.type == "tool_result" for block in message.content)


def assistant_turns(messages) -> list[list[int]]:
    """The indices of the assistant messages of each assistant turn, oldest first. A turn runs from one user
    message to the next: the assistant messages of a tool loop (between them only user messages that return tool
    results) are one turn, as Anthropic counts "the last assistant turn" whose thinking a tool loop must keep.
    `role: "system"` messages belong to no turn."""
    turns: list[list[int]] = []
    open_turn = False
    for index, message in enumerate(messages):
        if message.role == "assistant":
            if not open_turn:
                turns.append([])
                open_turn = True
            turns[-1].append(index)
        elif message.role == "user" and not _is_tool_results_only(message):
            open_turn = False
    return turns


def clear_thinking(messages, edit: ClearThinking) -> Cleared:
    """Removes the thinking (and redacted_thinking) blocks of every assistant turn but the `keep` latest turns that
    have any. `count` is the number of turns whose thinking was removed."""
    with_thinking = [turn for turn in assistant_turns(messages)
                     if any(block.type in THINKING_BLOCKS for i in turn for block in messages[i].content)]
    kept = edit.turns_kept
    cleared_turns = [] if kept is None else with_thinking[:max(len(with_thinking) - kept, 0)]
    cleared_indices = {i for turn in cleared_turns for i in turn}
    edited = [message.model_copy(update={"content": [b for b in message.content if b.type not in THINKING_BLOCKS]})
              if index in cleared_indices else message for index, message in enumerate(messages)]
    return Cleared(edited, len(cleared_turns))


@dataclass(frozen=True)
class ToolUse:
    message: int            # the assistant message that holds the tool_use block
    block: int
    id: str
    name: str


def tool_uses(messages) -> list[ToolUse]:
    """Every tool_use block of the conversation, in the order they were made."""
    return [ToolUse(m, b, block.id, block.name) for m, message in enumerate(messages) if message.role == "assistant"
            for b, block in enumerate(message.content) if block.type == "tool_use"]


def clear_tool_uses(messages, edit: ClearToolUses) -> Cleared:
    """Clears the oldest tool use/result pairs, all but the `keep` most recent tool uses of the conversation, and
    never those of `exclude_tools`: each cleared result's content becomes CLEARED_TOOL_RESULT (its is_error flag
    stays) and, as `clear_tool_inputs` says, its tool_use's input becomes {}. The call itself stays in place, so
    the model still sees what it did and in which order. `count` is the number of pairs cleared.

    `keep` counts the most recent tool uses whatever their tool, excluded ones included: "the N most recent pairs
    are kept" then holds as written, and excluded tools are additionally never cleared."""
    uses = tool_uses(messages)
    kept = edit.keep.value
    older = uses[:-kept] if kept else uses
    excluded = set(edit.exclude_tools or ())
    cleared = [use for use in older if use.name not in excluded]
    if not cleared:
        return Cleared(list(messages), 0)
    cleared_ids = {use.id for use in cleared}
    clear_inputs = {(use.message, use.block) for use in cleared if edit.clears_input_of(use.name)}
    edited = []
    for m, message in enumerate(messages):
        blocks = list(message.content)
        changed = False
        for b, block in enumerate(blocks):
            if (m, b) in clear_inputs:
                blocks[b] = block.model_copy(update={"input": {}})
                changed = True
            elif block.type == "tool_result" and block.tool_use_id in cleared_ids:
                blocks[b] = block.model_copy(update={"content": CLEARED_TOOL_RESULT})
                changed = True
        edited.append(message.model_copy(update={"content": blocks}) if changed else message)
    return Cleared(edited, len(cleared))
