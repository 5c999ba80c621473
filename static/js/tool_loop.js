// The tool protocol, hands on: after a response with tool_use blocks, the user plays the tool. Each call gets a
// tool_result (with is_error for a failed call); "Send result" sends the conversation again with them.

const $ = (id) => document.getElementById(id);

export function showToolForms(toolUses, onSend) {
  const box = $("tool-results");
  box.replaceChildren();
  box.hidden = false;
  const heading = document.createElement("h3");
  heading.textContent = "Your turn: play the tool";
  box.append(heading);
  const forms = toolUses.map((call) => {
    const field = document.createElement("fieldset");
    field.className = "tool-result";
    field.innerHTML = `
      <legend>tool_result for <b></b> <code></code></legend>
      <textarea rows="3" class="code" spellcheck="false"
                placeholder='e.g. {"temperature": 18, "unit": "celsius", "conditions": "sunny"}'></textarea>
      <label class="inline"><input type="checkbox"> is_error</label>`;
    field.querySelector("b").textContent = call.name;
    field.querySelector("code").textContent = call.id;
    box.append(field);
    return { call, field };
  });
  const send = document.createElement("button");
  send.type = "button";
  send.id = "send-result";
  send.className = "primary";
  send.textContent = forms.length > 1 ? "Send results" : "Send result";
  send.addEventListener("click", () => onSend(forms.map(toolResult)));
  box.append(send);
}

function toolResult({ call, field }) {
  const result = { type: "tool_result", tool_use_id: call.id };
  const content = field.querySelector("textarea").value;
  if (content.trim()) result.content = content;
  if (field.querySelector("input[type=checkbox]").checked) result.is_error = true;
  return result;
}

export function hideToolForms() {
  $("tool-results").hidden = true;
  $("tool-results").replaceChildren();
}
