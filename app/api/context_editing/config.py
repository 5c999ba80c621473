"""`context_management` (beta `context-management-2025-06-27`), validated: the edits a request asks for, with
Anthropic's documented defaults filled in, or a 400 whose message starts with the field at fault
(`context_management.edits.1.trigger.value: ...`).

The field is read from the request's unknown fields (the request schema accepts and keeps them), so the request
schema itself needs no knowledge of it.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, field_validator
from pydantic import model_validator

from ..errors import InvalidRequestError

CLEAR_TOOL_USES = "clear_tool_uses_20250919"
CLEAR_THINKING = "clear_thinking_20251015"
# Anthropic's other edit type: server-side summarisation by the model, which needs a second generation per request.
COMPACT = "compact_20260112"


class _Part(BaseModel):
    # Unknown fields are ignored, as everywhere else in a request: clients add new ones before servers know them.
    model_config = ConfigDict(extra="allow", frozen=True)


class Trigger(_Part):
    type: Literal["input_tokens", "tool_uses"]
    value: StrictInt = Field(ge=1)


class ToolUsesKeep(_Part):
    type: Literal["tool_uses"]
    value: StrictInt = Field(ge=0)


class ClearAtLeast(_Part):
    type: Literal["input_tokens"]
    value: StrictInt = Field(ge=0)


class ClearToolUses(_Part):
    """Documented defaults: trigger 100,000 input tokens, keep 3 tool uses, no clear_at_least, no excluded tools,
    tool inputs kept."""
    type: Literal["clear_tool_uses_20250919"]
    trigger: Trigger = Trigger(type="input_tokens", value=100_000)
    keep: ToolUsesKeep = ToolUsesKeep(type="tool_uses", value=3)
    clear_at_least: ClearAtLeast | None = None
    exclude_tools: list[StrictStr] | None = None
    # true: every cleared tool use loses its input too; a list: only the cleared uses of those tools do.
    clear_tool_inputs: Any = False

    @field_validator("trigger", "keep", mode="before")
    @classmethod
    def _null_is_default(cls, value, info):
        return cls.model_fields[info.field_name].default if value is None else value

    @field_validator("clear_tool_inputs", mode="before")
    @classmethod
    def _bool_or_names(cls, value):
        if value is None:
            return False
        if isinstance(value, bool) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return value
        raise ValueError("must be true, false or a list of tool names")

    def clears_input_of(self, tool_name: str) -> bool:
        inputs = self.clear_tool_inputs
        return inputs is True or (isinstance(inputs, list) and tool_name in inputs)


class ThinkingKeep(_Part):
    type: Literal["thinking_turns", "all"]
    value: StrictInt | None = None

    @model_validator(mode="after")
    def _turns_need_a_count(self):
        if self.type == "thinking_turns" and (self.value is None or self.value < 1):
            raise ValueError("value: must be an integer greater than 0 when type is 'thinking_turns'")
        return self


class ClearThinking(_Part):
    """Documented default: keep the thinking of the last assistant turn (`{"type": "thinking_turns", "value": 1}`);
    `"all"` (or `{"type": "all"}`) keeps every thinking block."""
    type: Literal["clear_thinking_20251015"]
    keep: ThinkingKeep = ThinkingKeep(type="thinking_turns", value=1)

    @field_validator("keep", mode="before")
    @classmethod
    def _all_as_a_string(cls, value):
        if value is None:
            return cls.model_fields["keep"].default
        if isinstance(value, str) and value != "all":
            raise ValueError('must be "all" or {"type": "thinking_turns", "value": N}')
        return {"type": "all"} if value == "all" else value

    @property
    def turns_kept(self) -> int | None:
        """How many of the latest assistant turns keep their thinking; None: all of them."""
        return None if self.keep.type == "all" else self.keep.value


class ContextManagement(_Part):
    edits: list[ClearThinking | ClearToolUses] = []

    @property
    def clear_thinking(self) -> ClearThinking | None:
        return next((edit for edit in self.edits if isinstance(edit, ClearThinking)), None)


EDIT_MODELS: dict[str, type[_Part]] = {CLEAR_TOOL_USES: ClearToolUses, CLEAR_THINKING: ClearThinking}


def _first_error(error: ValidationError, prefix: str) -> InvalidRequestError:
    """pydantic's first error as `prefix.field.path: message`."""
    first = error.errors(include_url=False)[0]
    path = ".".join([prefix, *(str(part) for part in first["loc"])])
    text = first["msg"].removeprefix("Value error, ")
    if first["type"] == "model_type":
        text = "Input should be an object"     # pydantic would name our class ("instance of Trigger")
    if text.startswith("value: "):      # a model-level rule that names its own field
        path, text = f"{path}.value", text.removeprefix("value: ")
    return InvalidRequestError(f"{path}: {text}", param=path)


def _edit(raw: Any, path: str) -> ClearThinking | ClearToolUses:
    if not isinstance(raw, dict):
        raise InvalidRequestError(f"{path}: Input should be an object", param=path)
    kind = raw.get("type")
    model = EDIT_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        served = f"this server applies {CLEAR_TOOL_USES} and {CLEAR_THINKING}"
        reason = (f"{COMPACT} (server-side compaction) is not supported: {served}" if kind == COMPACT
                  else f"unknown context management edit type {kind!r}: {served}" if kind is not None
                  else f"Field required ({served})")
        raise InvalidRequestError(f"{path}.type: {reason}", param=f"{path}.type")
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise _first_error(error, path) from None


def parse_context_management(raw: Any) -> ContextManagement | None:
    """The request's `context_management` (None when it has none), or InvalidRequestError naming the field."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidRequestError("context_management: Input should be an object", param="context_management")
    edits = raw.get("edits")
    if edits is None:
        return ContextManagement()
    if not isinstance(edits, list):
        raise InvalidRequestError("context_management.edits: Input should be a valid list",
                                  param="context_management.edits")
    parsed = [_edit(edit, f"context_management.edits.{i}") for i, edit in enumerate(edits)]
    seen: set[str] = set()
    for index, edit in enumerate(parsed):
        path = f"context_management.edits.{index}.type"
        if edit.type in seen:
            raise InvalidRequestError(f"{path}: {edit.type} is given more than once; each edit type may appear "
                                      f"once", param=path)
        seen.add(edit.type)
        # Anthropic's documented rule: thinking is cleared first, so the tool edit's trigger and its
        # clear_at_least see the prompt without the cleared thinking.
        if edit.type == CLEAR_THINKING and index > 0:
            raise InvalidRequestError(f"{path}: when edits are combined, {CLEAR_THINKING} must be listed first "
                                      f"in context_management.edits", param=path)
    return ContextManagement(edits=parsed)
