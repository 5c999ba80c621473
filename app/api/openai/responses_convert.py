"""OpenAI Responses request → engine GenerationRequest, through the pieces chat completions uses too (`common`).

- `instructions`, then system and developer messages, join the one system prompt (in that order);
- `input` as a string is one user message; as items: messages (`input_text` / `output_text` / `refusal` parts,
  `input_image` in user messages), `function_call` items (the assistant's calls; consecutive ones form one
  assistant turn) and `function_call_output` items (each answers a call of the assistant turn before it);
- `reasoning` items are earlier thinking: the model sees them with the assistant turn they preceded, and only for
  the latest turn of a tool loop (as chat's `reasoning_content`);
- `reasoning.effort` takes the budget of --effort-budgets, at most half of max_output_tokens;
- `text.format` holds the answer to a schema (`json_schema`), to an object (`json_object`), or not at all (`text`).
"""
from __future__ import annotations

from types import SimpleNamespace

from ...engine.request import GenerationRequest, Sampling
from ...service.errors import InvalidRequestError
from ..convert import Conversion
from ..images import RequestImages
from .common import (append_turn, check_image_url, checked_output_schema, effort_thinking, function_tools,
                     generation_request, image_source, parse_arguments, tool_choice)
from .responses_schema import MessageItem, NamedFunction, ResponsesRequest


def _parts_text(parts, path: str, images: RequestImages, *, images_allowed: bool) -> str:
    if isinstance(parts, str):
        return parts
    texts = []
    for index, part in enumerate(parts):
        where = f"{path}.{index}"
        if part.type in ("input_text", "output_text"):
            texts.append(part.text)
        elif part.type == "refusal":
            texts.append(part.refusal)
        elif part.type == "input_image":
            if not images_allowed:
                raise InvalidRequestError(f"{where}: images can only be sent in user messages", param=where)
            if part.image_url is None:
                raise InvalidRequestError(f"{where}.image_url: required (file_id images need the Files API, which "
                                          "this server does not serve for OpenAI clients)", param=f"{where}.image_url")
            check_image_url(part.image_url, f"{where}.image_url")
            texts.append(images.marker_for(SimpleNamespace(source=image_source(part.image_url)), where))
        else:
            raise InvalidRequestError(f"{where}: {part.type} content is not supported by this server", param=where)
    return "\n\n".join(t for t in texts if t)


class _Conversation:
    """The items, in order, as the system prompt and the chat turns templates take."""

    def __init__(self, images: RequestImages):
        self.images = images
        self.system: list[str] = []
        self.turns: list[dict] = []
        self.calls: dict[str, str] = {}        # the latest assistant turn's call ids → function names
        self.reasoning: list[str] = []         # reasoning items waiting for the assistant turn they preceded

    def _assistant(self, turn: dict) -> None:
        if not self.turns or self.turns[-1]["role"] != "assistant":
            self.calls = {}                    # a new assistant turn: only its own calls may be answered next
        if self.reasoning:
            turn["reasoning_content"] = "\n\n".join(self.reasoning)
            self.reasoning = []
        append_turn(self.turns, turn)

    def message(self, item: MessageItem, path: str) -> None:
        text = _parts_text(item.content, f"{path}.content", self.images, images_allowed=item.role == "user")
        if item.role in ("system", "developer"):
            self.system.append(text)
        elif item.role == "assistant":
            self._assistant({"role": "assistant", "content": text})
        else:
            append_turn(self.turns, {"role": "user", "content": text})

    def call(self, item, path: str) -> None:
        arguments = parse_arguments(item.arguments, f"{path}.arguments")
        self._assistant({"role": "assistant", "content": "", "tool_calls": [
            {"id": item.call_id, "type": "function", "function": {"name": item.name, "arguments": arguments}}]})
        self.calls[item.call_id] = item.name

    def output(self, item, path: str) -> None:
        name = self.calls.get(item.call_id)
        if name is None:
            raise InvalidRequestError(f"{path}.call_id: {item.call_id!r} answers no function_call of the assistant "
                                      "turn before it", param=f"{path}.call_id")
        text = _parts_text(item.output, f"{path}.output", self.images, images_allowed=False)
        self.turns.append({"role": "tool", "tool_call_id": item.call_id, "name": name, "content": text,
                           "is_error": False})

    def thought(self, item) -> None:
        # The full text where a client sent it back (this server's own items carry it), else the summary.
        texts = [part.text for part in (item.content or item.summary)]
        if any(texts):
            self.reasoning.append("\n\n".join(t for t in texts if t))


def _conversation(request: ResponsesRequest, images: RequestImages) -> _Conversation:
    conversation = _Conversation(images)
    if request.instructions:
        conversation.system.append(request.instructions)
    items = request.input
    if isinstance(items, str):
        conversation.turns.append({"role": "user", "content": items})
        return conversation
    for index, item in enumerate(items):
        path = f"input.{index}"
        if item.type == "message":
            conversation.message(item, path)
        elif item.type == "function_call":
            conversation.call(item, path)
        elif item.type == "function_call_output":
            conversation.output(item, path)
        else:
            conversation.thought(item)
    return conversation


def _output_schema(request: ResponsesRequest) -> dict | None:
    text_format = request.format
    if text_format is None or text_format.type == "text":
        return None
    if text_format.type == "json_object":
        return {"type": "object"}
    return checked_output_schema(text_format.json_schema, "text.format.schema")


def to_generation_request(request: ResponsesRequest, options: Conversion, max_new_tokens: int) -> GenerationRequest:
    """`max_new_tokens`: the request's cap, or (without one) what the caller chose; the service checks it fits."""
    images = RequestImages(options.model_id, options.accepts_images, options.url_fetcher)
    conversation = _conversation(request, images)
    choice = request.tool_choice
    named = choice.name if isinstance(choice, NamedFunction) else None
    functions = request.functions().values()
    tools = function_tools([(f.tool.name, f.tool.description, f.tool.parameters, f.tool.strict) for f in functions],
                           [f"{f.path}.parameters" for f in functions])
    return generation_request(
        system="\n\n".join(t for t in conversation.system if t), turns=conversation.turns,
        thinking=effort_thinking(request.effort, request.max_output_tokens, options.effort_budgets,
                                 "max_output_tokens"),
        tools=tools, choice=tool_choice(None if named else choice, named, parallel=request.parallel_tool_calls),
        output_schema=_output_schema(request), max_new_tokens=max_new_tokens,
        sampling=Sampling(temperature=1.0 if request.temperature is None else request.temperature,
                          top_p=request.top_p),
        images=images, param="input", format_field="text.format")
