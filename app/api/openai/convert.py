"""OpenAI chat completion request → engine GenerationRequest: the same request the Anthropic side makes
(`app.api.convert`), so both protocols get the same chat template, tool grammar, answer format and thinking budget.

- system and developer messages join the one system prompt, first (as Anthropic's `system` does);
- an assistant message's `tool_calls` become the turn's calls (arguments parsed: templates take a dict), and each
  `tool` message answers one of them by `tool_call_id`;
- a final assistant message is the prefill the model continues (llama.cpp does the same);
- `image_url` parts go through the same image checks as Anthropic image blocks (data URLs; http URLs only with
  --allow-url-fetch); on a text-only model they are a 400 naming the model;
- `reasoning_effort` picks the thinking budget from the same table as `output_config.effort` (--effort-budgets),
  at most half of the output cap; `thinking_budget_tokens` sets one outright.
"""
from __future__ import annotations

import json
import re
from types import SimpleNamespace

from ...engine.request import GenerationRequest, Sampling, ThinkingSettings, ToolChoice
from ...engine.tools.answer_format import answer_schema_problems, strict_tool_problems
from ...service.errors import InvalidRequestError
from ..convert import Conversion
from ..images import RequestImages
from .schema import ChatCompletionRequest, ChatMessage, NamedToolChoice

_DATA_URL = re.compile(r"data:(?P<media_type>[\w.+-]+/[\w.+-]+)?(?:;[\w-]+=[^;,]*)*;base64,(?P<data>.*)", re.S)


def _image_source(url: str) -> dict:
    """An image_url as the image source Anthropic requests carry, so one decoder checks both."""
    match = _DATA_URL.fullmatch(url)
    if match:
        return {"type": "base64", "media_type": match["media_type"], "data": match["data"]}
    if url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    return {"type": "invalid"}


def _content_text(message: ChatMessage, path: str, images: RequestImages) -> str:
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    texts = []
    for index, part in enumerate(message.content):
        where = f"{path}.content.{index}"
        if part.type == "text":
            texts.append(part.text)
        elif part.type == "refusal":
            texts.append(part.refusal)
        elif part.type == "image_url":
            if message.role != "user":
                raise InvalidRequestError(f"{where}: images can only be sent in user messages", param=where)
            if not part.image_url.url.startswith(("data:", "http://", "https://")):
                raise InvalidRequestError(f"{where}.image_url.url: must be a data: URL (base64) or an http(s) URL",
                                          param=f"{where}.image_url.url")
            texts.append(images.marker_for(SimpleNamespace(source=_image_source(part.image_url.url)), where))
        else:
            raise InvalidRequestError(f"{where}: {part.type} content is not supported by this server", param=where)
    return "\n\n".join(t for t in texts if t)


def _arguments(call, path: str) -> dict:
    try:
        arguments = json.loads(call.function.arguments or "{}")
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        raise InvalidRequestError(f"{path}.function.arguments: must be a JSON object, as text",
                                  param=f"{path}.function.arguments")
    return arguments


def _turns(request: ChatCompletionRequest, images: RequestImages) -> tuple[str, list[dict]]:
    system: list[str] = []
    turns: list[dict] = []
    calls_before: dict[str, str] = {}        # the latest assistant message's call ids → function names
    for index, message in enumerate(request.messages):
        path = f"messages.{index}"
        text = _content_text(message, path, images)
        if message.role in ("system", "developer"):
            system.append(text)
        elif message.role == "tool":
            name = calls_before.get(message.tool_call_id)
            if name is None:
                raise InvalidRequestError(f"{path}.tool_call_id: {message.tool_call_id!r} answers no tool call of "
                                          "the assistant message before it", param=f"{path}.tool_call_id")
            turns.append({"role": "tool", "tool_call_id": message.tool_call_id, "name": name, "content": text,
                          "is_error": False})
        elif message.role == "assistant":
            calls = [{"id": call.id, "type": "function",
                      "function": {"name": call.function.name,
                                   "arguments": _arguments(call, f"{path}.tool_calls.{i}")}}
                     for i, call in enumerate(message.tool_calls or [])]
            calls_before = {call["id"]: call["function"]["name"] for call in calls}
            turn = {"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})}
            if message.reasoning_content:
                turn["reasoning_content"] = message.reasoning_content
            _append(turns, turn)
        else:
            _append(turns, {"role": "user", "content": text})
    return "\n\n".join(t for t in system if t), turns


def _append(turns: list[dict], turn: dict) -> None:
    """Consecutive turns of one role are merged: templates expect the roles to alternate."""
    last = turns[-1] if turns else None
    if last is None or last["role"] != turn["role"]:
        turns.append(turn)
        return
    last["content"] = "\n\n".join(t for t in (last["content"], turn["content"]) if t)
    if turn.get("tool_calls"):
        last["tool_calls"] = [*last.get("tool_calls", []), *turn["tool_calls"]]


def _latest_reasoning_only(turns: list[dict]) -> None:
    """The model sees earlier reasoning only for the latest assistant turn inside a tool loop, as the Anthropic
    side (and the Qwen3 / DeepSeek templates) do."""
    keep = None
    for turn in reversed(turns):
        if turn["role"] == "assistant":
            keep = turn
            break
        if turn["role"] != "tool":
            break
    for turn in turns:
        if turn is not keep:
            turn.pop("reasoning_content", None)


def _thinking(request: ChatCompletionRequest, options: Conversion) -> ThinkingSettings | None:
    max_tokens = request.max_output_tokens
    if request.thinking_budget_tokens is not None:
        budget, effort = request.thinking_budget_tokens, None
        if max_tokens is not None and budget >= max_tokens:
            raise InvalidRequestError("thinking_budget_tokens: must be less than max_completion_tokens "
                                      f"({budget} >= {max_tokens})", param="thinking_budget_tokens")
    elif request.reasoning_effort in (None, "none"):
        return None
    else:
        # OpenAI's "minimal" is below "low", the table's smallest level.
        effort = "low" if request.reasoning_effort == "minimal" else request.reasoning_effort
        budget = options.effort_budgets[effort]
        if max_tokens is not None:
            # As adaptive thinking on the Anthropic side: at most half of the output cap, so an answer fits.
            budget = min(budget, max_tokens // 2)
        if budget < 1:
            raise InvalidRequestError("max_completion_tokens: reasoning needs at least 2 tokens",
                                      param="max_completion_tokens")
    return ThinkingSettings(budget_tokens=budget, effort=effort)


def _tool_choice(request: ChatCompletionRequest) -> ToolChoice:
    single = request.parallel_tool_calls is False
    choice = request.tool_choice
    if isinstance(choice, NamedToolChoice):
        return ToolChoice(mode="tool", name=choice.function.name, disable_parallel=single)
    mode = {None: "auto", "auto": "auto", "none": "none", "required": "any"}[choice]
    return ToolChoice(mode=mode, disable_parallel=single)


def _output_schema(request: ChatCompletionRequest, prefill: str) -> dict | None:
    response_format = request.response_format
    if response_format is None or response_format.type == "text":
        return None
    schema = {"type": "object"} if response_format.type == "json_object" else response_format.json_schema.json_schema
    path = "response_format.json_schema.schema"
    problems = answer_schema_problems(schema)
    if problems:
        raise InvalidRequestError(f"{path}: this schema cannot be enforced by the grammar: {'; '.join(problems)}",
                                  param=path)
    if prefill:
        raise InvalidRequestError("messages: a final assistant message (a prefill) cannot be combined with "
                                  "response_format; end the conversation with a user message", param="messages")
    return schema


def _tools(request: ChatCompletionRequest) -> tuple[dict, ...]:
    tools = tuple({"type": "function", "function": {"name": t.function.name,
                                                     "description": t.function.description or "",
                                                     "parameters": t.function.parameters,
                                                     **({"strict": True} if t.function.strict else {})}}
                  for t in request.tools or [])
    for index, problem in strict_tool_problems(tools):
        path = f"tools.{index}.function.parameters"
        raise InvalidRequestError(f"{path}: strict function: this schema cannot be enforced by the grammar: "
                                  f"{problem}", param=path)
    return tools


def to_generation_request(request: ChatCompletionRequest, options: Conversion,
                          max_new_tokens: int) -> GenerationRequest:
    """`max_new_tokens`: the request's cap, or (without one) what the caller chose; the service checks it fits."""
    images = RequestImages(options.model_id, options.accepts_images, options.url_fetcher)
    system, turns = _turns(request, images)
    _latest_reasoning_only(turns)
    thinking = _thinking(request, options)
    prefill = ""
    if turns and turns[-1]["role"] == "assistant":
        if turns[-1].get("tool_calls"):
            raise InvalidRequestError("messages: the conversation ends with tool_calls; send a tool message with "
                                      "each call's result after it", param="messages")
        prefill = turns.pop()["content"]
        if prefill and thinking is not None:
            raise InvalidRequestError("messages: a final assistant message (a prefill) cannot be combined with "
                                      "reasoning; end the conversation with a user message", param="messages")
    if not turns:
        raise InvalidRequestError("messages: at least one user message is required", param="messages")
    messages = ([{"role": "system", "content": system}] if system else []) + turns
    return GenerationRequest(
        messages=tuple(messages), prefill=prefill, thinking=thinking, tools=_tools(request),
        tool_choice=_tool_choice(request), output_schema=_output_schema(request, prefill),
        max_new_tokens=max_new_tokens, stop_sequences=tuple(request.stop_list),
        sampling=Sampling(temperature=1.0 if request.temperature is None else request.temperature,
                          top_p=request.top_p, top_k=request.top_k, seed=request.seed),
        images=tuple(images.images), image_nonce=images.nonce if images.images else "")
