// The three views: the message as a user sees it, the raw events, and the prompt the model sees.

import { describeContextEdits } from "./context_edits.js";

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const pretty = (value) => JSON.stringify(value, null, 2);

// (a) One element per content block, updated in place as deltas arrive.
export class MessageView {
  constructor() {
    this.root = $("message");
    this.outcome = $("outcome");
    this.blocks = [];
    this.sources = new Map();
  }

  reset() {
    this.root.replaceChildren();
    this.outcome.replaceChildren();
    this.blocks = [];
    this.sources = new Map();    // each cited passage's number in this answer, in the order first cited
  }

  update(index, block, partialJson) {
    if (!this.blocks[index]) this.blocks[index] = this.root.appendChild(this.create(block));
    const node = this.blocks[index];
    if (block.type === "text") {
      node.textContent = block.text;
      for (const citation of block.citations || []) node.append(this.citationMark(citation));
    } else if (block.type === "thinking") {
      node.querySelector("pre").textContent = block.thinking;
      node.querySelector("summary").textContent = `thinking · ${block.thinking.length} characters`;
      node.querySelector(".signature").textContent = block.signature ? `signature ${block.signature}` : "";
    } else if (block.type === "tool_use") {
      // While streaming only a JSON prefix exists; the parsed input replaces it when the block stops.
      node.querySelector("pre").textContent = partialJson ?? pretty(block.input);
    } else if (block.type === "redacted_thinking") {
      node.textContent = "redacted_thinking";
    }
  }

  // A cited claim's mark: a superscript number, the passage's exact text (and where it is) on hover.
  citationMark(citation) {
    const key = JSON.stringify(citation);
    if (!this.sources.has(key)) this.sources.set(key, this.sources.size + 1);
    const where = citation.document_title || citation.title || citation.source
      || `document ${citation.document_index ?? citation.search_result_index}`;
    const page = citation.type === "page_location" ? `, page ${citation.start_page_number}` : "";
    const mark = element("sup", "cite", `[${this.sources.get(key)}]`);
    mark.title = `“${citation.cited_text.trim()}” — ${where}${page}`;
    return mark;
  }

  create(block) {
    // Text blocks are inline, so an answer split into cited claims reads as one paragraph.
    if (block.type === "text") return element("span", "block text");
    if (block.type === "thinking") {
      const details = element("details", "block thinking");
      details.open = true;
      details.append(element("summary"), element("pre"), element("div", "signature"));
      return details;
    }
    if (block.type === "tool_use") {
      const card = element("div", "block tool-use");
      const head = element("div", "tool-head");
      head.append(element("span", "tag", "tool_use"), element("b", "tool-name", block.name),
                  element("code", "tool-id", block.id));
      card.append(head, element("pre", "tool-input"));
      return card;
    }
    return element("div", `block ${block.type}`);
  }

  finish(message) {
    const rows = [["stop_reason", message.stop_reason], ["stop_sequence", message.stop_sequence],
                  ["input_tokens", message.usage?.input_tokens],
                  // The prompt tokens read from the server's prefix cache (and, with cache_control, written to it).
                  ["cache_read_input_tokens", message.usage?.cache_read_input_tokens],
                  ["cache_creation_input_tokens", message.usage?.cache_creation_input_tokens],
                  ["output_tokens", message.usage?.output_tokens]];
    for (const [name, value] of Object.entries(message.thinkserve || {})) rows.push([`thinkserve.${name}`, value]);
    for (const [name, value] of rows) {
      if (value === null || value === undefined) continue;
      // Nested figures (tool_grammar, tool_input_errors) read as compact JSON.
      const shown = typeof value === "object" ? JSON.stringify(value) : String(value);
      this.outcome.append(element("dt", "", name), element("dd", `value-${name.replace(".", "-")}`, shown));
    }
  }
}

// (b) The events as they arrived, with the time since the request was sent.
export class EventsView {
  constructor() {
    this.list = $("events");
    this.count = $("event-count");
  }

  reset() {
    this.list.replaceChildren();
    this.count.textContent = "";
  }

  append(name, raw, ms) {
    // Follow the newest event, unless the user has scrolled up to read an earlier one.
    const panel = this.list.closest(".panel");
    const follow = panel.scrollTop + panel.clientHeight >= panel.scrollHeight - 40;
    const item = element("li", `event event-${name}`);
    item.append(element("span", "ms", `+${ms.toFixed(0)} ms`), element("span", "name", name),
                element("code", "data", raw));
    this.list.append(item);
    this.count.textContent = `(${this.list.children.length})`;
    if (follow) panel.scrollTop = panel.scrollHeight;
  }
}

// (c) Special tokens are highlighted and line ends marked, without changing the text itself: the marks are CSS,
// so selecting and copying the prompt gives the exact string.
const SPECIAL = /(<\|[^|<>\s]{1,40}\|>|<\/?think>|<\/?tool_call>|<\/?s>|\[\/?INST\]|\[TOOL_CALLS\])/;

export function showPrompt(prompt, inputTokens, contextManagement) {
  // What context editing cleared to reach this prompt (nothing shown without context_management).
  $("prompt-edits").replaceChildren(...describeContextEdits(contextManagement).map((line) => element("li", "", line)));
  const view = $("prompt");
  view.replaceChildren();
  for (const [i, part] of prompt.split(SPECIAL).entries()) {
    if (i % 2) { view.append(element("span", "special", part)); continue; }
    part.split("\n").forEach((line, j) => {
      if (j) view.append(element("span", "newline"), "\n");
      if (line) view.append(line);
    });
  }
  $("prompt-tokens").textContent = `${inputTokens} tokens`;
  view.classList.remove("failed");
}

export function showPromptError(error) {
  $("prompt-edits").replaceChildren();
  $("prompt").textContent = describe(error);
  $("prompt").classList.add("failed");
  $("prompt-tokens").textContent = "";
}

// "400 invalid_request_error: …" for an HTTP error; an error inside a stream has no status of its own.
export function describe(error) {
  if (!error.type) return error.message || String(error);
  const origin = error.status ? `${error.status}` : "event: error ·";
  return `${origin} ${error.type}: ${error.message}` + (error.requestId ? ` (${error.requestId})` : "");
}

export function showError(error) {
  const box = $("error");
  box.hidden = false;
  box.textContent = describe(error);
  if (error.type === "authentication_error") box.textContent += " — enter the server's API key at the top.";
}

export function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}
