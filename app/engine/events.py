"""Plain events the engine yields while generating.

The engine speaks tokens and text, never Anthropic JSON: `app.api.stream` turns these into SSE events or a
Message. A consumer opens a new content block whenever the delta kind changes, and closes the open block on
`BlockEnd` or `Finished`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class StopReason(str, Enum):
    END = "end"                      # the model produced its end-of-turn token
    LENGTH = "length"                # max_new_tokens ran out
    STOP_SEQUENCE = "stop_sequence"  # one of the request's stop sequences completed
    TOOL_CALL = "tool_call"          # the turn ended with a tool call
    CANCELLED = "cancelled"          # the client went away


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ThinkingDelta:
    text: str


@dataclass(frozen=True)
class ToolCallStart:
    call_id: str
    name: str


@dataclass(frozen=True)
class ToolArgsDelta:
    partial_json: str


@dataclass(frozen=True)
class BlockEnd:
    """The section being produced (thinking, text or a tool call) is complete."""


@dataclass(frozen=True)
class Usage:
    """Anthropic's split of the prompt: input_tokens + cache_read_input_tokens + cache_creation_input_tokens is the
    whole prompt. cache_read: tokens whose KV came from the prefix cache; cache_creation: tokens the request marked
    for caching (cache_control) that were computed and written to it; input_tokens: the rest."""
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens


@dataclass(frozen=True)
class Finished:
    stop_reason: StopReason
    usage: Usage
    stop_sequence: str | None = None
    # Research figures (thinking tokens generated, whether a budget was forced, ...), reported as an extension.
    stats: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    """Generation raised; the job is over and the step loop goes on with the others."""
    message: str


Event = TextDelta | ThinkingDelta | ToolCallStart | ToolArgsDelta | BlockEnd | Finished | Failed
TERMINAL_EVENTS = (Finished, Failed)
