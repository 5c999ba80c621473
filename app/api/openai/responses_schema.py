"""Validation of OpenAI Responses API bodies (`POST /v1/responses`).

Unknown fields are accepted and ignored (`metadata`, `user`, `include`, `prompt_cache_key`, `service_tier`,
`text.verbosity`, `reasoning.summary`, ...), as for chat completions. What this server cannot honour is a 400 that
says so, never silently dropped: `previous_response_id` and `conversation` (nothing is stored: see the README),
`background`, `prompt`, logprobs, and input items other than messages, function calls, their outputs and reasoning.
The one exception is tools: built-in (hosted) and `custom` tools are accepted and not offered to the model
(`HostedTool`), because Codex sends `web_search` with every request.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple, Union

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, StrictBool, StrictInt, StrictStr, Tag,
                      field_validator, model_validator)

from ..schema import TOOL_NAME, validate
from .schema import REASONING_EFFORTS


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextPart(_Open):
    type: Literal["input_text", "output_text"]
    text: StrictStr


class ImagePart(_Open):
    type: Literal["input_image"]
    image_url: StrictStr | None = None      # a data: URL or an http(s) URL
    file_id: StrictStr | None = None        # the Files API's: not served (convert says so)
    detail: Literal["auto", "low", "high", "original"] | None = None


class RefusalPart(_Open):
    type: Literal["refusal"]
    refusal: StrictStr


class UnsupportedPart(_Open):
    """Known to OpenAI, read by no model here (convert says so)."""
    type: Literal["input_file", "input_audio"]


Part = Annotated[Union[TextPart, ImagePart, RefusalPart, UnsupportedPart], Field(discriminator="type")]


class MessageItem(_Open):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: Union[StrictStr, list[Part]]


class FunctionCallItem(_Open):
    type: Literal["function_call"]
    call_id: StrictStr = Field(min_length=1)
    name: StrictStr
    arguments: StrictStr        # a JSON object, as text


class FunctionCallOutputItem(_Open):
    type: Literal["function_call_output"]
    call_id: StrictStr = Field(min_length=1)
    output: Union[StrictStr, list[Part]]


class ReasoningText(_Open):
    type: Literal["summary_text", "reasoning_text"]
    text: StrictStr


class ReasoningItem(_Open):
    """Earlier reasoning, sent back (Codex does, with store false): the model sees it within a tool loop only."""
    type: Literal["reasoning"]
    summary: list[ReasoningText] = Field(default_factory=list)
    content: list[ReasoningText] | None = None
    encrypted_content: StrictStr | None = None       # this server makes none; whatever comes back is ignored


ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning")
InputItem = Annotated[Union[MessageItem, FunctionCallItem, FunctionCallOutputItem, ReasoningItem],
                      Field(discriminator="type")]


class FunctionTool(_Open):
    type: Literal["function"]
    name: StrictStr = Field(pattern=TOOL_NAME.pattern)
    description: StrictStr | None = None
    parameters: dict | None = None
    strict: StrictBool | None = None

    @field_validator("parameters")
    @classmethod
    def _object_parameters(cls, value: dict | None) -> dict:
        if value is None:
            return {"type": "object", "properties": {}}
        if value.get("type") != "object":
            raise ValueError("must be a JSON Schema with type 'object'")
        return value


class NamespaceTool(_Open):
    """Function tools grouped under a name (Codex sends its sub-agent tools so): each is offered to the model as a
    function, and a call of one names its namespace."""
    type: Literal["namespace"]
    name: StrictStr
    description: StrictStr | None = None
    tools: list[FunctionTool]


class HostedTool(_Open):
    """A built-in tool OpenAI runs on its own servers (web_search, file_search, code_interpreter, mcp, ...) or a
    freeform `custom` tool: not offered to the model, since nothing here runs it (README); accepted so that clients
    which always send one (Codex sends web_search) work."""
    type: StrictStr


def _tool_kind(tool: Any) -> str:
    kind = tool.get("type") if isinstance(tool, dict) else getattr(tool, "type", None)
    return kind if kind in ("function", "namespace") else "hosted"


Tool = Annotated[Union[Annotated[FunctionTool, Tag("function")], Annotated[NamespaceTool, Tag("namespace")],
                       Annotated[HostedTool, Tag("hosted")]], Discriminator(_tool_kind)]


class Function(NamedTuple):
    tool: FunctionTool
    namespace: str | None       # the namespace tool it came in, if any
    path: str                   # where it is in the request, for errors: tools.3 or tools.4.tools.1


class NamedFunction(_Open):
    type: Literal["function"]
    name: StrictStr


class TextFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    name: StrictStr | None = None
    description: StrictStr | None = None
    # `schema` would shadow pydantic's BaseModel.schema; the wire name is the alias.
    json_schema: dict | None = Field(default=None, alias="schema")
    strict: StrictBool | None = None

    @model_validator(mode="after")
    def _schema_given(self):
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("schema: Field required when type is 'json_schema'")
        return self


class TextConfig(_Open):
    format: TextFormat | None = None


class ReasoningConfig(_Open):
    effort: Literal[REASONING_EFFORTS] | None = None


class ResponsesRequest(_Open):
    model: StrictStr = Field(min_length=1)
    input: Union[StrictStr, list[InputItem]]
    instructions: StrictStr | None = None
    tools: list[Tool] | None = None
    tool_choice: Union[Literal["auto", "none", "required"], NamedFunction, None] = None
    parallel_tool_calls: StrictBool | None = None
    reasoning: ReasoningConfig | None = None
    text: TextConfig | None = None
    max_output_tokens: StrictInt | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stream: StrictBool | None = None
    store: StrictBool | None = None          # accepted; nothing is kept either way (README: why)
    # Asked for but not served: a 400 when set (see the module docstring).
    previous_response_id: StrictStr | None = None
    conversation: Any = None
    background: StrictBool | None = None
    prompt: Any = None
    top_logprobs: StrictInt | None = None

    @model_validator(mode="before")
    @classmethod
    def _typed_items(cls, body: Any) -> Any:
        """An item with a role and no type is a message (the SDK's EasyInputMessage). An item of a type this server
        does not serve is named as such, rather than as a failed union."""
        if not isinstance(body, dict):
            return body
        items = body.get("input")
        if isinstance(items, list):
            items = [{**item, "type": "message"} if isinstance(item, dict) and "type" not in item and "role" in item
                     else item for item in items]
            for index, item in enumerate(items):
                kind = item.get("type") if isinstance(item, dict) else None
                if isinstance(kind, str) and kind not in ITEM_TYPES:
                    raise ValueError(f"input.{index}.type: {kind!r} input items are not supported by this server "
                                     f"(served: {', '.join(ITEM_TYPES)})")
            body = {**body, "input": items}
        return body

    @field_validator("tool_choice", mode="before")
    @classmethod
    def _known_choice(cls, value: Any) -> Any:
        # Said whole: pydantic would report the union's object branch for a misspelt string.
        if isinstance(value, str) and value not in ("auto", "none", "required"):
            raise ValueError("must be 'auto', 'none', 'required' or {\"type\": \"function\", \"name\": ...}, not "
                             + repr(value))
        return value

    @model_validator(mode="after")
    def _served_fields(self):
        if self.previous_response_id is not None:
            raise ValueError("previous_response_id: not supported: this server stores no responses; send the whole "
                             "conversation in input (as Codex does, with store false)")
        if self.conversation is not None:
            raise ValueError("conversation: not supported: this server stores no conversations; send the whole "
                             "conversation in input")
        refused = {"background": self.background, "prompt": self.prompt, "top_logprobs": self.top_logprobs}
        for name, value in refused.items():
            if value:
                raise ValueError(f"{name}: not supported by this server")
        return self

    @model_validator(mode="after")
    def _tools_consistent(self):
        names = [t.name for t in self.tools or [] if isinstance(t, FunctionTool)]
        names += [inner.name for t in self.tools or [] if isinstance(t, NamespaceTool) for inner in t.tools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"tools: function names must be unique: {', '.join(duplicates)}")
        if isinstance(self.tool_choice, NamedFunction) and self.tool_choice.name not in names:
            raise ValueError(f"tool_choice.name: function {self.tool_choice.name!r} is not one of the tools in the "
                             "request")
        if self.tool_choice == "required" and not names:
            raise ValueError("tool_choice: 'required' needs tools: the request has none")
        return self

    def functions(self) -> dict[str, Function]:
        """Every function the model may call, by name. Names are unique across namespaces too
        (`_tools_consistent`): the model calls a function by its name alone."""
        functions: dict[str, Function] = {}
        for index, tool in enumerate(self.tools or []):
            if isinstance(tool, FunctionTool):
                functions.setdefault(tool.name, Function(tool, None, f"tools.{index}"))
            elif isinstance(tool, NamespaceTool):
                for position, inner in enumerate(tool.tools):
                    functions.setdefault(inner.name, Function(inner, tool.name, f"tools.{index}.tools.{position}"))
        return functions

    def hosted_tools(self) -> list[str]:
        return [tool.type for tool in self.tools or [] if isinstance(tool, HostedTool)]

    @property
    def effort(self) -> str | None:
        return self.reasoning.effort if self.reasoning else None

    @property
    def format(self) -> TextFormat | None:
        return self.text.format if self.text else None


PART_TYPES = ("input_text", "output_text", "input_image", "refusal", "input_file", "input_audio", *ITEM_TYPES,
              "summary_text", "reasoning_text", "function", "namespace", "hosted")


def parse_responses_request(body: Any) -> ResponsesRequest:
    return validate(ResponsesRequest, body, {}, tags=PART_TYPES)
