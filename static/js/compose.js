// The compose form: an editable list of turns, and the request body built from every field.

const $ = (id) => document.getElementById(id);

export const EXAMPLE_TOOLS = [{
  name: "get_weather",
  description: "Get the current weather in a city.",
  input_schema: {
    type: "object",
    properties: {
      city: { type: "string", description: "The city, e.g. Paris" },
      unit: { type: "string", enum: ["celsius", "fahrenheit"] },
    },
    required: ["city"],
  },
}];

// Context editing that shows itself within a short tool loop: thinking of the last turn only, and from the second
// tool use on, every tool result but the latest cleared.
export const EXAMPLE_CONTEXT_MANAGEMENT = {
  edits: [
    { type: "clear_thinking_20251015", keep: { type: "thinking_turns", value: 1 } },
    { type: "clear_tool_uses_20250919", trigger: { type: "tool_uses", value: 1 }, keep: { type: "tool_uses", value: 1 } },
  ],
};

// A turn's content is either plain text or, once the tool loop has added turns, a list of content blocks that
// the user can still edit as JSON (thinking blocks must keep their signatures, tool results their ids).
export function addTurn(role, content = "") {
  const blocks = Array.isArray(content);
  const item = document.createElement("li");
  item.className = "turn";
  item.dataset.kind = blocks ? "blocks" : "text";
  item.innerHTML = `
    <div class="turn-head">
      <select class="role" aria-label="role">
        <option value="user">user</option><option value="assistant">assistant</option>
      </select>
      <span class="kind">${blocks ? "content blocks (JSON)" : "text"}</span>
      <label class="attach" title="attach an image (image block), or a PDF or text file (document block)">attach
        <input type="file" class="attach-file" hidden
               accept="image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,.pdf,.txt,.md">
      </label>
      <button type="button" class="remove" title="remove this turn" aria-label="remove turn">×</button>
    </div>
    <textarea class="content" rows="2"></textarea>`;
  item.querySelector(".role").value = role;
  if (blocks) showBlocks(item, content);
  else item.querySelector(".content").value = content;
  item.querySelector(".remove").addEventListener("click", () => item.remove());
  const input = item.querySelector(".attach-file");
  input.addEventListener("change", async () => {
    if (input.files.length) showBlocks(item, [await fileBlock(input.files[0]), ...turnBlocks(item)]);
    input.value = "";
  });
  $("turns").append(item);
  return item;
}

// The turn as content blocks, whichever way it is being edited now.
function turnBlocks(item) {
  const text = item.querySelector(".content").value;
  if (item.dataset.kind === "blocks") return parseJson(text, "the turn's content blocks");
  return text.trim() ? [{ type: "text", text }] : [];
}

function showBlocks(item, blocks) {
  item.dataset.kind = "blocks";
  item.querySelector(".kind").textContent = "content blocks (JSON)";
  const area = item.querySelector(".content");
  area.classList.add("code");
  area.rows = 8;
  area.spellcheck = false;
  area.value = JSON.stringify(blocks, null, 2);
}

const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];

// A file as Anthropic's content block: an image as a base64 image block (a vision model sees it; "What the model
// sees" shows its template's placeholder, and a text-only model answers with a 400 naming itself), a PDF as a
// base64 document (the server extracts its text page by page), anything else as a text document.
async function fileBlock(file) {
  if (IMAGE_TYPES.includes(file.type)) {
    return { type: "image", source: { type: "base64", media_type: file.type, data: await base64Of(file) } };
  }
  if (file.type === "application/pdf" || file.name.toLowerCase().endsWith(".pdf")) {
    return { type: "document", title: file.name,
             source: { type: "base64", media_type: "application/pdf", data: await base64Of(file) } };
  }
  return { type: "document", title: file.name,
           source: { type: "text", media_type: "text/plain", data: await file.text() } };
}

async function base64Of(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function readTurns() {
  return [...$("turns").children].map((item, index) => {
    const text = item.querySelector(".content").value;
    const role = item.querySelector(".role").value;
    if (item.dataset.kind === "text") return { role, content: text };
    return { role, content: parseJson(text, `messages.${index} (content blocks)`) };
  });
}

function parseJson(text, where) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${where} is not valid JSON: ${error.message}`);
  }
}

export function toolsFromEditor() {
  const tools = parseJson($("tools-json").value, "tools");
  if (!Array.isArray(tools)) throw new Error("tools must be a JSON array of tool definitions");
  return tools;
}

// The tool_choice name list follows the tools editor, so a forced call can only name a tool that exists.
export function refreshToolNames() {
  let names = [];
  try {
    names = toolsFromEditor().map((tool) => tool?.name).filter(Boolean);
  } catch { /* keep the names we have while the JSON is being typed */ return; }
  const select = $("tool-name");
  const chosen = select.value;
  select.replaceChildren(...names.map((name) => new Option(name, name)));
  if (names.includes(chosen)) select.value = chosen;
}

// budget_tokens must stay below max_tokens, so the slider's range follows max_tokens.
export function syncBudget(source) {
  const slider = $("thinking-budget-slider");
  const box = $("thinking-budget");
  slider.max = Math.max(1, (Number($("max-tokens").value) || 2) - 1);
  if (source === slider) box.value = slider.value;
  else slider.value = box.value;
}

function syncEnabled() {
  const thinking = $("thinking-enabled").checked;
  $("thinking-budget-slider").disabled = $("thinking-budget").disabled = !thinking;
  const tools = $("tools-enabled").checked;
  for (const id of ["tools-json", "tool-choice", "disable-parallel"]) $(id).disabled = !tools;
  $("tool-name").disabled = !tools || $("tool-choice").value !== "tool";
  $("context-json").disabled = !$("context-enabled").checked;
}

export function initCompose() {
  $("tools-json").value = JSON.stringify(EXAMPLE_TOOLS, null, 2);
  $("context-json").value = JSON.stringify(EXAMPLE_CONTEXT_MANAGEMENT, null, 2);
  refreshToolNames();
  addTurn("user", "Explain in one sentence why the sky is blue.");
  $("add-user").addEventListener("click", () => addTurn("user").querySelector("textarea").focus());
  $("add-assistant").addEventListener("click", () => addTurn("assistant").querySelector("textarea").focus());
  $("tools-json").addEventListener("input", refreshToolNames);
  $("thinking-budget-slider").addEventListener("input", (e) => syncBudget(e.target));
  $("thinking-budget").addEventListener("input", (e) => syncBudget(e.target));
  $("max-tokens").addEventListener("input", () => syncBudget(null));
  for (const id of ["thinking-enabled", "tools-enabled", "tool-choice", "context-enabled"]) {
    $(id).addEventListener("change", syncEnabled);
  }
  syncBudget(null);
  syncEnabled();
}

// The request body exactly as it will be sent. Optional fields are left out when unset, so the body shows only
// what the user chose.
export function buildRequest({ stream }) {
  const body = { model: $("model").value.trim(), max_tokens: Number($("max-tokens").value) };
  const system = $("system").value;
  if (system.trim()) body.system = system;
  body.messages = readTurns();
  const temperature = $("temperature").value;
  if (temperature !== "") body.temperature = Number(temperature);
  // One per line; a stop sequence that spans lines is written with \n (and a tab with \t).
  const stops = $("stop-sequences").value.split("\n").filter((line) => line !== "")
    .map((line) => line.replaceAll("\\n", "\n").replaceAll("\\t", "\t"));
  if (stops.length) body.stop_sequences = stops;
  if ($("thinking-enabled").checked) {
    body.thinking = { type: "enabled", budget_tokens: Number($("thinking-budget").value) };
  }
  if ($("tools-enabled").checked) {
    body.tools = toolsFromEditor();
    const choice = { type: $("tool-choice").value };
    if (choice.type === "tool") choice.name = $("tool-name").value;
    if ($("disable-parallel").checked && choice.type !== "none") choice.disable_parallel_tool_use = true;
    body.tool_choice = choice;
  }
  if ($("context-enabled").checked) {
    const contextManagement = parseJson($("context-json").value, "context_management");
    if (contextManagement === null || typeof contextManagement !== "object" || Array.isArray(contextManagement)) {
      throw new Error("context_management must be a JSON object such as {\"edits\": [...]}");
    }
    body.context_management = contextManagement;
  }
  if (stream) body.stream = true;
  return body;
}

// The tool loop: the assistant's reply goes back exactly as it came (thinking blocks with their signatures),
// followed by a user turn that answers every tool_use block.
export function appendToolRound(assistantContent, toolResults) {
  addTurn("assistant", assistantContent);
  addTurn("user", toolResults);
}
