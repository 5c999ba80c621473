"""OpenAI chat completion request → engine GenerationRequest, through the pieces both OpenAI adapters share
(`common`): the same request the Anthropic side makes (`app.api.convert`), so both protocols get the same chat
template, tool grammar, answer format and thinking budget.

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

from dataclasses import replace

from types import SimpleNamespace

from ...engine.request import GenerationRequest, Sampling, ThinkingSettings
from ...service.errors import InvalidRequestError
from ..convert import Conversion
from ..images import RequestImages
from .common import (append_turn, check_image_url, checked_output_schema, effort_thinking, function_tools,
                     generation_request, image_source, parse_arguments, tool_choice)
from .schema import ChatCompletionRequest, ChatMessage, NamedToolChoice


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
            check_image_url(part.image_url.url, f"{where}.image_url.url")
            texts.append(images.marker_for(SimpleNamespace(source=image_source(part.image_url.url)), where))
        else:
            raise InvalidRequestError(f"{where}: {part.type} content is not supported by this server", param=where)
    return "\n\n".join(t for t in texts if t)


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
                                   "arguments": parse_arguments(call.function.arguments,
                                                                f"{path}.tool_calls.{i}.function.arguments")}}
                     for i, call in enumerate(message.tool_calls or [])]
            calls_before = {call["id"]: call["function"]["name"] for call in calls}
            turn = {"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})}
            if message.reasoning_content:
                turn["reasoning_content"] = message.reasoning_content
            append_turn(turns, turn)
        else:
            append_turn(turns, {"role": "user", "content": text})
    return "\n\n".join(t for t in system if t), turns


def _thinking(request: ChatCompletionRequest, options: Conversion) -> ThinkingSettings | None:
    max_tokens = request.max_output_tokens
    if request.thinking_budget_tokens is None:
        return effort_thinking(request.reasoning_effort, max_tokens, options.effort_budgets, "max_completion_tokens")
    budget = request.thinking_budget_tokens
    if max_tokens is not None and budget >= max_tokens:
        raise InvalidRequestError("thinking_budget_tokens: must be less than max_completion_tokens "
                                  f"({budget} >= {max_tokens})", param="thinking_budget_tokens")
    return ThinkingSettings(budget_tokens=budget, effort=None)


def _output_schema(request: ChatCompletionRequest) -> dict | None:
    response_format = request.response_format
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return {"type": "object"}
    return checked_output_schema(response_format.json_schema.json_schema, "response_format.json_schema.schema")


def to_generation_request(request: ChatCompletionRequest, options: Conversion,
                          max_new_tokens: int) -> GenerationRequest:
    """`max_new_tokens`: the request's cap, or (without one) what the caller chose; the service checks it fits."""
    images = RequestImages(options.model_id, options.accepts_images, options.url_fetcher)
    system, turns = _turns(request, images)
    choice = request.tool_choice
    named = choice.function.name if isinstance(choice, NamedToolChoice) else None
    tools = function_tools([(t.function.name, t.function.description, t.function.parameters, t.function.strict)
                            for t in request.tools or []],
                           [f"tools.{index}.function.parameters" for index in range(len(request.tools or []))])
    generation = generation_request(
        system=system, turns=turns, thinking=_thinking(request, options), tools=tools,
        choice=tool_choice(None if named else choice, named, parallel=request.parallel_tool_calls),
        output_schema=_output_schema(request), max_new_tokens=max_new_tokens, stops=tuple(request.stop_list),
        sampling=Sampling(temperature=1.0 if request.temperature is None else request.temperature,
                          top_p=request.top_p, top_k=request.top_k, seed=request.seed),
        images=images, param="messages", format_field="response_format")
    # logprobs come from the engine's token-level figures (the same as thinkserve.logprobs on /v1/messages).
    return replace(generation, logprobs=(request.top_logprobs or 0) if request.logprobs else None)
