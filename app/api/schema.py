"""Validation of request bodies: pydantic models that follow Anthropic's Messages API.

Unknown fields are accepted and ignored everywhere (clients send new ones all the time: `cache_control`, ...);
the model keeps them, and `context_management` is read from there by `app.api.context_editing`. Errors become one
400 whose message starts with the field path, e.g. `messages.2.content.0.type: ...`, as Anthropic's do.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError,
                      ValidationInfo, field_validator, model_validator)

from .errors import InvalidRequestError

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


def _non_blank(text: str) -> str:
    if not text:
        raise ValueError("text content blocks must be non-empty")
    if not text.strip():
        raise ValueError("text content blocks must contain non-whitespace text")
    return text


class TextBlock(_Open):
    type: Literal["text"]
    text: StrictStr

    _check_text = field_validator("text")(_non_blank)


class ImageBlock(_Open):
    type: Literal["image"]
    source: dict


class CitationsConfig(_Open):
    enabled: StrictBool = False


class DocumentBlock(_Open):
    type: Literal["document"]
    source: dict
    citations: CitationsConfig | None = None


class SearchResultBlock(_Open):
    type: Literal["search_result"]
    source: StrictStr
    title: StrictStr
    content: list[TextBlock]
    citations: CitationsConfig | None = None


class ToolReferenceBlock(_Open):
    type: Literal["tool_reference"]
    tool_name: StrictStr


ToolResultPart = Annotated[Union[TextBlock, ImageBlock, DocumentBlock, SearchResultBlock, ToolReferenceBlock],
                           Field(discriminator="type")]


class ToolUseBlock(_Open):
    type: Literal["tool_use"]
    id: StrictStr
    name: StrictStr
    input: dict


class ToolResultBlock(_Open):
    type: Literal["tool_result"]
    tool_use_id: StrictStr
    content: Union[StrictStr, list[ToolResultPart], None] = None
    is_error: StrictBool | None = None


class ThinkingBlock(_Open):
    type: Literal["thinking"]
    thinking: StrictStr
    signature: StrictStr


class RedactedThinkingBlock(_Open):
    type: Literal["redacted_thinking"]
    data: StrictStr


ContentBlock = Annotated[Union[TextBlock, ImageBlock, DocumentBlock, SearchResultBlock, ToolUseBlock,
                               ToolResultBlock, ThinkingBlock, RedactedThinkingBlock], Field(discriminator="type")]
BLOCK_TYPES = ("text", "image", "document", "search_result", "tool_reference", "tool_use", "tool_result",
               "thinking", "redacted_thinking")


class Message(_Open):
    # "system" inside messages is what Claude Code sends; it is merged into the system prompt.
    role: Literal["user", "assistant", "system"]
    content: list[ContentBlock]

    @field_validator("content", mode="before")
    @classmethod
    def _string_is_one_text_block(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            if not value and info.data.get("role") == "assistant":
                return []      # an empty assistant turn is allowed, as an empty content array is
            return [{"type": "text", "text": value}]
        return value

    @model_validator(mode="after")
    def _user_turn_has_content(self):
        if self.role == "user" and not self.content:
            raise ValueError("user messages must have non-empty content")
        return self


class Tool(_Open):
    name: StrictStr
    input_schema: dict
    description: StrictStr | None = None
    type: Literal["custom"] | None = None
    # Every call is grammar-constrained anyway; strict adds a 400 for a schema keyword the grammar cannot enforce.
    strict: StrictBool | None = None

    @model_validator(mode="before")
    @classmethod
    def _client_tools_only(cls, data: Any) -> Any:
        # Server tools (web_search_20250305, code_execution_20250825, bash_20250124, ...) run on Anthropic's side.
        kind = data.get("type") if isinstance(data, dict) else None
        if kind not in (None, "custom"):
            raise ValueError(f"tool type {kind!r} is not supported: this server runs client tools only "
                             f"(name, description, input_schema)")
        return data

    @field_validator("input_schema")
    @classmethod
    def _object_schema(cls, schema: dict) -> dict:
        if schema.get("type") != "object":
            raise ValueError("input_schema must be a JSON Schema with type 'object'")
        return schema

    @field_validator("name")
    @classmethod
    def _name_pattern(cls, name: str) -> str:
        if not TOOL_NAME.match(name):
            raise ValueError(f"tool name {name!r} must match ^[a-zA-Z0-9_-]{{1,64}}$")
        return name


class ToolChoice(_Open):
    type: Literal["auto", "any", "tool", "none"]
    name: StrictStr | None = None
    disable_parallel_tool_use: StrictBool | None = None

    @model_validator(mode="after")
    def _named_tool_has_name(self):
        if self.type == "tool" and not self.name:
            raise ValueError("name is required when type is 'tool'")
        return self


class Thinking(_Open):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: StrictInt | None = None
    display: Literal["summarized", "omitted"] | None = None
    # thinkserve extension (research): force at least this many thinking tokens, s1-style.
    min_tokens: StrictInt | None = Field(default=None, ge=0)
    # thinkserve extension (research): the thinking section starts with this text; the model continues it, or,
    # with prefill_closed, answers after it (NoThinking: prefill_closed with an empty or token text).
    prefill: StrictStr | None = None
    prefill_closed: StrictBool = False


EFFORTS = ("low", "medium", "high", "xhigh", "max")


class OutputFormat(_Open):
    type: Literal["json_schema"]
    # `schema` would shadow pydantic's BaseModel.schema; the wire name is the alias.
    json_schema: dict = Field(alias="schema")


class OutputConfig(_Open):
    effort: Literal[EFFORTS] | None = None
    format: OutputFormat | None = None


class ThinkserveOptions(_Open):
    """thinkserve's research extensions to a request, under `thinkserve` (the SDKs pass it with extra_body)."""
    # Token-level figures: each generated token's log-probability and entropy, with this many alternatives.
    logprobs: StrictInt | None = Field(default=None, ge=0, le=20)
    # Samples of one prompt, read once: the response is the first, `thinkserve.samples` holds them all.
    n: StrictInt = Field(default=1, ge=1, le=16)
    # Sampling from a generator of the request's own: the same request, the same tokens, alone or batched.
    seed: StrictInt | None = None
    # A budget curve from one trace: the answer at each of these thinking budgets (`app.service.sweep`).
    budget_sweep: list[Annotated[StrictInt, Field(ge=0)]] | None = Field(default=None, min_length=1, max_length=16)
    # ... each budget's answer with max_tokens = its budget + this (at most max_tokens); None: max_tokens for all.
    sweep_answer_tokens: StrictInt | None = Field(default=None, ge=1)


class _RequestBase(_Open):
    model: StrictStr = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    system: Union[StrictStr, list[TextBlock], None] = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    output_config: OutputConfig | None = None
    output_format: OutputFormat | None = None        # the deprecated beta spelling of output_config.format
    thinkserve: ThinkserveOptions | None = None

    def answer_format(self) -> tuple[str, dict] | None:
        """(the field path, the JSON schema) of the answer format, from either spelling; None without one."""
        if self.output_config is not None and self.output_config.format is not None:
            return "output_config.format.schema", self.output_config.format.json_schema
        if self.output_format is not None:
            return "output_format.schema", self.output_format.json_schema
        return None

    @property
    def effort(self) -> str | None:
        return self.output_config.effort if self.output_config is not None else None

    @model_validator(mode="after")
    def _one_answer_format(self):
        if self.output_format is not None and self.output_config is not None and self.output_config.format:
            raise ValueError("output_format: use output_config.format alone (output_format is its deprecated "
                             "spelling); the request sets both")
        return self

    @field_validator("system")
    @classmethod
    def _system_not_blank(cls, system):
        # "" means no system prompt (Anthropic accepts it); whitespace alone is a mistake.
        if isinstance(system, str) and system and not system.strip():
            raise ValueError("text content blocks must contain non-whitespace text")
        return system

    def marks_cache(self) -> bool:
        """Whether a `cache_control` breakpoint is set anywhere: on the request (automatic caching), a system or
        content block, a nested tool_result block, or a tool."""
        pending: list = [self, *(self.tools or [])]
        if isinstance(self.system, list):
            pending.extend(self.system)
        for message in self.messages:
            if isinstance(message.content, list):
                pending.extend(message.content)
        while pending:
            item = pending.pop()
            fields = (item.model_extra or {}) if isinstance(item, BaseModel) else item if isinstance(item, dict) else {}
            if fields.get("cache_control"):
                return True
            nested = item.get("content") if isinstance(item, dict) else getattr(item, "content", None)
            if isinstance(nested, list):
                pending.extend(nested)
        return False

    @model_validator(mode="after")
    def _tools_consistent(self):
        names = [t.name for t in self.tools or []]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"tools: tool names must be unique: {', '.join(duplicates)}")
        choice = self.tool_choice
        if choice is not None and choice.type == "tool" and choice.name not in names:
            raise ValueError(f"tool_choice.name: tool {choice.name!r} is not one of the tools in the request")
        return self


class MessagesRequest(_RequestBase):
    max_tokens: StrictInt = Field(ge=1)
    stop_sequences: list[Annotated[StrictStr, Field(min_length=1)]] | None = None
    stream: StrictBool | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: StrictInt | None = Field(default=None, ge=1)
    metadata: dict | None = None

    @model_validator(mode="after")
    def _thinking_rules(self, info: ValidationInfo):
        thinking = self.thinking
        if thinking is None or thinking.type != "enabled":
            return self
        minimum = (info.context or {}).get("min_thinking_budget", 1024)
        if thinking.budget_tokens is None:
            raise ValueError("thinking.budget_tokens: Field required when thinking.type is 'enabled'")
        if thinking.budget_tokens < minimum:
            raise ValueError(f"thinking.budget_tokens: Input should be greater than or equal to {minimum}")
        if thinking.budget_tokens >= self.max_tokens:
            raise ValueError("`max_tokens` must be greater than `thinking.budget_tokens`")
        if self.tool_choice is not None and self.tool_choice.type in ("any", "tool"):
            raise ValueError("Thinking may not be enabled when tool_choice forces tool use.")
        return self


class CountTokensRequest(_RequestBase):
    """count_tokens takes the same body as messages, minus max_tokens (and any sampling fields are ignored)."""


def _path(loc: tuple, tags: tuple[str, ...] = BLOCK_TYPES) -> str:
    """pydantic's error location as Anthropic writes it: `messages.2.content.0.type`.

    pydantic puts union member names into the location (the discriminator tag after a list index, or the
    branch's type name such as `str`); they say nothing to a client, so they are dropped.
    """
    parts: list[str] = []
    previous = None
    for position, item in enumerate(loc):
        # A discriminator tag sits between a list index and the block's own field: (…, 0, "text", "text").
        is_tag = (isinstance(item, str) and isinstance(previous, int) and item in tags
                  and position + 1 < len(loc))
        is_branch = isinstance(item, str) and (item in ("str", "none", "dict[str,any]") or "[" in item
                                               or item.startswith(("function-", "literal")))
        if not (is_tag or is_branch):
            parts.append(str(item))
        previous = item
    return ".".join(parts)


def _message(error: dict, tags: tuple[str, ...] = BLOCK_TYPES) -> str:
    path = _path(tuple(error["loc"]), tags)
    text = error["msg"].removeprefix("Value error, ")
    if error["type"] == "model_type":
        text = "Input should be an object"   # pydantic would name our class: "instance of Message"
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        path += ".type"    # the discriminator is the field at fault: messages.2.content.0.type
    if error["type"] == "union_tag_invalid":
        text = f"Input tag {error['input'].get('type')!r} is not a valid content block type"
    elif error["type"] == "union_tag_not_found":
        text = "each content block needs a 'type'"
    # A model-level rule already names its field ("tools: ..."); don't prefix the empty path.
    return f"{path}: {text}" if path else text


def validate(model: type[BaseModel], body: Any, context: dict, tags: tuple[str, ...] = BLOCK_TYPES):
    """`tags`: the discriminator values of the body's content parts, left out of error paths."""
    if not isinstance(body, dict):
        raise InvalidRequestError("request body must be a JSON object")
    try:
        return model.model_validate(body, context=context)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # Report the error with the deepest location: for a union, that is the branch the client meant.
        best = max(errors, key=lambda e: len(_path(tuple(e["loc"]), tags).split(".")))
        raise InvalidRequestError(_message(best, tags)) from None


def parse_messages_request(body: Any, *, min_thinking_budget: int) -> MessagesRequest:
    return validate(MessagesRequest, body, {"min_thinking_budget": min_thinking_budget})


def parse_count_tokens_request(body: Any) -> CountTokensRequest:
    return validate(CountTokensRequest, body, {})
