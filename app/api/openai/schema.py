"""Validation of OpenAI chat completion bodies (`POST /v1/chat/completions`), as vLLM and llama.cpp take them.

Unknown fields are accepted and ignored (`user`, `metadata`, `store`, `service_tier`, ...), as the peers do. Fields
this server cannot honour (penalties, `logit_bias`, the deprecated `functions`) are a 400 that says so,
never silently dropped: a client that asks for them would otherwise get an answer it did not ask for.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator, model_validator

from ..schema import TOOL_NAME, validate

# OpenAI's levels plus Anthropic's two above high ("max" is thinkserve's largest budget); "none" turns thinking off.
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextPart(_Open):
    type: Literal["text"]
    text: StrictStr


class ImageUrl(_Open):
    url: StrictStr
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Open):
    type: Literal["image_url"]
    image_url: ImageUrl


class RefusalPart(_Open):
    type: Literal["refusal"]
    refusal: StrictStr


class UnsupportedPart(_Open):
    """Audio and file parts are known to OpenAI; this server reads neither, and says so (convert)."""
    type: Literal["input_audio", "file"]


ContentPart = Annotated[Union[TextPart, ImagePart, RefusalPart, UnsupportedPart], Field(discriminator="type")]


class FunctionCall(_Open):
    name: StrictStr
    arguments: StrictStr        # a JSON object, as text: OpenAI's wire form


class ToolCall(_Open):
    id: StrictStr
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Union[StrictStr, list[ContentPart], None] = None
    name: StrictStr | None = None
    tool_calls: list[ToolCall] | None = None        # assistant
    tool_call_id: StrictStr | None = None           # tool
    reasoning_content: StrictStr | None = None      # assistant: its earlier thinking (DeepSeek's convention)

    @model_validator(mode="after")
    def _role_fields(self):
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("tool_call_id: Field required for a message with role 'tool'")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("tool_calls: only assistant messages carry tool_calls")
        if self.role != "assistant" and self.content is None:
            raise ValueError(f"content: Field required for a message with role {self.role!r}")
        return self


class FunctionDefinition(_Open):
    name: StrictStr = Field(pattern=TOOL_NAME.pattern)
    description: StrictStr | None = None
    parameters: dict = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: StrictBool | None = None

    @model_validator(mode="after")
    def _object_parameters(self):
        if self.parameters.get("type") != "object":
            raise ValueError("parameters: must be a JSON Schema with type 'object'")
        return self


class FunctionTool(_Open):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_Open):
    name: StrictStr


class NamedToolChoice(_Open):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(_Open):
    name: StrictStr = "response"
    description: StrictStr | None = None
    # `schema` would shadow pydantic's BaseModel.schema; the wire name is the alias.
    json_schema: dict = Field(default_factory=dict, alias="schema")
    strict: StrictBool | None = None


class ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self):
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("json_schema: Field required when type is 'json_schema'")
        return self


class StreamOptions(_Open):
    include_usage: StrictBool | None = None


class ChatCompletionRequest(_Open):
    model: StrictStr = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[FunctionTool] | None = None
    tool_choice: Union[Literal["auto", "none", "required"], NamedToolChoice, None] = None
    parallel_tool_calls: StrictBool | None = None
    response_format: ResponseFormat | None = None
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    stop: Union[StrictStr, list[StrictStr], None] = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: StrictInt | None = Field(default=None, ge=1)       # vLLM's extension
    seed: StrictInt | None = None
    n: StrictInt = Field(default=1, ge=1, le=16)
    stream: StrictBool | None = None
    stream_options: StreamOptions | None = None
    reasoning_effort: Literal[REASONING_EFFORTS] | None = None
    # thinkserve extension, llama.cpp's name: think within exactly this budget (reasoning_effort picks one instead).
    thinking_budget_tokens: StrictInt | None = Field(default=None, ge=1)
    # The chosen tokens' log-probabilities (and top_logprobs alternatives), from the model's own distribution.
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = Field(default=None, ge=0, le=20)
    # Asked for but not served: a 400 when set to anything that changes the answer (see the module docstring).
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict | None = None
    functions: Any = None
    function_call: Any = None

    @field_validator("tool_choice", mode="before")
    @classmethod
    def _known_choice(cls, value: Any) -> Any:
        # Said whole: pydantic would report the union's object branch for a misspelt string.
        if isinstance(value, str) and value not in ("auto", "none", "required"):
            raise ValueError("must be 'auto', 'none', 'required' or "
                             '{"type": "function", "function": {"name": ...}}, not ' + repr(value))
        return value

    @property
    def max_output_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    @property
    def stop_list(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return [s for s in stops if s]        # "" would match everywhere; OpenAI ignores it too

    @model_validator(mode="after")
    def _served_fields(self):
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs: needs logprobs: true")
        refused = {"frequency_penalty": self.frequency_penalty or None,
                   "presence_penalty": self.presence_penalty or None, "logit_bias": self.logit_bias or None,
                   "functions": self.functions, "function_call": self.function_call}
        for name, value in refused.items():
            if value:
                hint = {"functions": "; use tools", "function_call": "; use tool_choice"}.get(name, "")
                raise ValueError(f"{name}: not supported by this server{hint}")
        if self.reasoning_effort not in (None, "none") and self.thinking_budget_tokens is not None:
            raise ValueError("thinking_budget_tokens: set either reasoning_effort or thinking_budget_tokens, not both")
        return self

    @model_validator(mode="after")
    def _tools_consistent(self):
        names = [t.function.name for t in self.tools or []]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"tools: function names must be unique: {', '.join(duplicates)}")
        choice = self.tool_choice
        if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
            raise ValueError(f"tool_choice.function.name: function {choice.function.name!r} is not one of the "
                             "tools in the request")
        if choice in ("required",) and not names:
            raise ValueError("tool_choice: 'required' needs tools: the request has none")
        return self


PART_TYPES = ("text", "image_url", "refusal", "input_audio", "file")


def parse_chat_request(body: Any) -> ChatCompletionRequest:
    return validate(ChatCompletionRequest, body, {}, tags=PART_TYPES)
