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
    CONTEXT_WINDOW = "context_window"  # the context window filled up before max_new_tokens ran out
    STOP_SEQUENCE = "stop_sequence"  # one of the request's stop sequences completed
    TOOL_CALL = "tool_call"          # the turn ended with a tool call
    CANCELLED = "cancelled"          # the client went away

    @property
    def cut_off(self) -> bool:
        """The output stopped for want of room, not because it was complete."""
        return self in (StopReason.LENGTH, StopReason.CONTEXT_WINDOW)


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
class CitationMark:
    """The answer text just before this mark cites passage `passage` (1-based) of the request's
    `GenerationRequest.citations`; the mark itself (`[n]`, `engine.citations.markers`) is not text."""
    passage: int


@dataclass(frozen=True)
class BlockEnd:
    """The section being produced (thinking, text or a tool call) is complete."""


@dataclass(frozen=True)
class Usage:
    """What one generation read and wrote, in tokens, as facts: each API writes them in its own shape (Anthropic's
    input / cache read / cache creation split, OpenAI's cached_tokens). computed + cached is the whole prompt."""
    computed_prompt_tokens: int      # prompt tokens the model computed (and left in the prefix cache)
    output_tokens: int               # tokens generated
    cached_prompt_tokens: int = 0    # prompt tokens whose KV came from the prefix cache

    @property
    def prompt_tokens(self) -> int:
        return self.computed_prompt_tokens + self.cached_prompt_tokens


@dataclass(frozen=True)
class Finished:
    stop_reason: StopReason
    usage: Usage
    stop_sequence: str | None = None
    # Research figures (thinking tokens generated, whether a budget was forced, ...), reported as an extension.
    stats: dict = field(default_factory=dict)
    # A budget sweep's trace (`GenerationRequest.fork_budgets`): each budget's fork, or None where a request with
    # that budget would have generated exactly this (or its budget cannot hold the closing marker).
    forks: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    """Generation raised; the job is over and the step loop goes on with the others."""
    message: str


Event = TextDelta | ThinkingDelta | ToolCallStart | ToolArgsDelta | CitationMark | BlockEnd | Finished | Failed
TERMINAL_EVENTS = (Finished, Failed)
