// Wires the playground together: compose → send (streamed) → the three views, and the tool loop.

import { ApiError, apiKey, getJson, postJson, postStream } from "./api.js";
import { addTurn, appendToolRound, buildRequest, initCompose } from "./compose.js";
import { Figures } from "./figures.js";
import { MessageAccumulator } from "./message.js";
import { clearError, EventsView, MessageView, showError, showPrompt, showPromptError } from "./render.js";
import { readEvents } from "./sse.js";
import { curlSnippet, pythonSnippet } from "./snippets.js";
import { hideToolForms, showToolForms } from "./tool_loop.js";

const $ = (id) => document.getElementById(id);
const messageView = new MessageView();
const eventsView = new EventsView();
const figures = new Figures();
let inFlight = null;          // the AbortController of the stream being read
let lastMessage = null;       // the latest complete response, for the tool loop and "add to conversation"

async function loadModels() {
  try {
    const { data } = await getJson("/v1/models");
    $("model-ids").replaceChildren(...data.map((model) => new Option(model.display_name, model.id)));
    if (!$("model").value && data.length) $("model").value = data[0].id;
  } catch (error) {
    showError(error);
  }
}

async function refreshPrompt(body) {
  const { stream, ...countable } = body;
  try {
    const { prompt, input_tokens: tokens, context_management: edits } = await postJson("/v1/messages/render",
                                                                                        countable);
    showPrompt(prompt, tokens, edits);
  } catch (error) {
    showPromptError(error);
  }
}

function startView(body) {
  clearError();
  hideToolForms();
  $("continue").hidden = true;
  messageView.reset();
  eventsView.reset();
  figures.start(body.thinking?.budget_tokens ?? null);
}

// The form as a request body, or null after showing what in the form is wrong.
function requestFromForm() {
  try {
    return buildRequest({ stream: true });
  } catch (error) {
    showError(error);
    return null;
  }
}

async function send() {
  const body = requestFromForm();
  if (!body) return;
  inFlight?.abort();
  const controller = inFlight = new AbortController();
  startView(body);
  lastMessage = null;
  refreshPrompt(body);
  $("send").disabled = true;
  $("stop").disabled = false;
  const accumulator = new MessageAccumulator();
  try {
    const response = await postStream("/v1/messages", body, controller.signal);
    for await (const { event, raw, data } of readEvents(response.body)) {
      if (controller !== inFlight) return;    // events still buffered from a request that was replaced
      eventsView.append(event, raw, figures.elapsed());
      if (event === "error") throw new ApiError(null, data);     // the stream's status (200) says nothing
      accumulator.apply(event, data);
      if (event === "content_block_delta") figures.delta(data.delta.type);
      if (event.startsWith("content_block_")) {
        messageView.update(data.index, accumulator.message.content[data.index], accumulator.partialJson[data.index]);
      }
      if (event === "message_stop") finish(accumulator);
    }
  } catch (error) {
    if (controller !== inFlight) return;      // replaced by a newer request (e.g. "Send result" right away)
    if (error.name === "AbortError") showError(new Error("stopped: the request was cancelled from the page"));
    else showError(error);
  } finally {
    if (controller === inFlight) {
      $("send").disabled = false;
      $("stop").disabled = true;
      inFlight = null;
    }
  }
}

function finish(accumulator) {
  const message = accumulator.message;
  lastMessage = message;
  messageView.finish(message);
  figures.finish(message);
  const toolUses = accumulator.toolUses();
  if (toolUses.length) showToolForms(toolUses, sendToolResults);
  else $("continue").hidden = false;
}

// The assistant turn goes back exactly as it came: thinking blocks keep their signatures, tool_use blocks their ids.
function sendToolResults(results) {
  appendToolRound(lastMessage.content, results);
  send();
}

function continueConversation() {
  addTurn("assistant", lastMessage.content);
  addTurn("user", "").querySelector("textarea").focus();
  $("continue").hidden = true;
}

async function showSnippet(title, text) {
  $("snippet-title").textContent = title;
  $("snippet").value = text;
  $("snippet-dialog").showModal();
  $("snippet").select();
  $("snippet").scrollTop = 0;          // selecting scrolled it to the end; a snippet reads from the top
  try {
    // The clipboard API exists only in secure contexts (https, or localhost); elsewhere the text is selected.
    await navigator.clipboard.writeText(text);
    $("snippet-status").textContent = "Copied to the clipboard.";
  } catch {
    $("snippet-status").textContent = "Select all and copy (the browser does not allow clipboard access here).";
  }
  if (apiKey.get()) $("snippet-status").textContent += " It reads the key from $ANTHROPIC_API_KEY.";
}

function copy(kind) {
  const body = requestFromForm();
  if (!body) return;
  if (kind === "curl") showSnippet("curl", curlSnippet(location.origin, body, Boolean(apiKey.get())));
  else showSnippet("Python (anthropic SDK)", pythonSnippet(location.origin, body));
}

function renderButton() {
  try {
    refreshPrompt(buildRequest({ stream: false }));
  } catch (error) {
    showPromptError(error);
  }
}

function init() {
  initCompose();
  $("api-key").value = apiKey.get();
  $("api-key").addEventListener("change", (e) => {
    apiKey.set(e.target.value.trim());
    clearError();
    loadModels().then(renderButton);
  });
  $("compose").addEventListener("submit", (e) => { e.preventDefault(); send(); });
  $("stop").addEventListener("click", () => inFlight?.abort());
  $("render").addEventListener("click", renderButton);
  $("continue").addEventListener("click", continueConversation);
  $("copy-curl").addEventListener("click", () => copy("curl"));
  $("copy-python").addEventListener("click", () => copy("python"));
  loadModels().then(renderButton);
}

init();
