"""Splits the model's decoded output, as it streams, into sections: text and thinking.

The parser sees text pieces in order and returns engine events. Thinking is delimited by the model profile's
markers (`<think>` / `</think>` for most open models); when the server itself opened the thinking section in the
prompt, the parser starts inside it. A marker split over several pieces is recognised, and no part of a marker
ever reaches a delta: the undecided tail is held back until it either completes the marker or cannot.

Tool calls are a third kind of section and plug in the same way: the profile names the opening and closing markers
of its native format (Hermes' `<tool_call>` / `</tool_call>`, Mistral's `[TOOL_CALLS]`, ...), the find-or-hold step
below switches into that section, and the section emits `ToolCallStart` then `ToolArgsDelta`s instead of deltas.
"""
from __future__ import annotations

from ..events import BlockEnd, Event, TextDelta, ThinkingDelta
from ..text.holdback import undecided_tail_length


class OutputParser:
    """Incremental text → events.

    Args:
        thinking_open: the marker that opens a thinking section, or None when the model has none.
        thinking_close: the marker that closes it.
        starts_in_thinking: the prompt already opened the thinking section (prompted thinking, or a template that
            forces the opening marker), so the first output is thinking.
        single_thinking_section: once a thinking section has closed, the opening marker is plain text. The thinking
            budget bounds one section; a model that writes "<think>" in its answer does not get a second one.

    Whitespace right after a marker ("<think>\\n", "</think>\\n\\n") is formatting, not content, and is dropped.
    """

    def __init__(self, thinking_open: str | None = None, thinking_close: str | None = None,
                 starts_in_thinking: bool = False, single_thinking_section: bool = False):
        if (thinking_open is None) != (thinking_close is None):
            raise ValueError("thinking_open and thinking_close go together: give both or neither")
        if starts_in_thinking and thinking_close is None:
            raise ValueError("starts_in_thinking needs thinking markers")
        self._open, self._close = thinking_open, thinking_close
        self._single_section = single_thinking_section
        self._in_thinking = starts_in_thinking
        self._strip_leading_whitespace = starts_in_thinking
        self._section_has_output = False
        self._held = ""

    @property
    def in_thinking(self) -> bool:
        return self._in_thinking

    def feed(self, text: str) -> list[Event]:
        events: list[Event] = []
        pending = self._held + text
        while pending:
            marker = self._close if self._in_thinking else self._open
            if marker is None:
                self._emit(pending, events)
                pending = ""
                break
            at = pending.find(marker)
            if at >= 0:
                self._emit(pending[:at], events)
                self._switch_section(events)
                pending = pending[at + len(marker):]
                continue
            keep = undecided_tail_length(pending, (marker,))
            self._emit(pending[:len(pending) - keep], events)
            pending = pending[len(pending) - keep:]
            break
        self._held = pending
        return events

    def flush(self) -> list[Event]:
        """The output ended: a held tail was not a marker after all, so it is content of the current section."""
        events: list[Event] = []
        held, self._held = self._held, ""
        self._emit(held, events)
        return events

    def _emit(self, text: str, events: list[Event]) -> None:
        if self._strip_leading_whitespace:
            text = text.lstrip()
            if not text:
                return
            self._strip_leading_whitespace = False
        if not text:
            return
        events.append(ThinkingDelta(text) if self._in_thinking else TextDelta(text))
        self._section_has_output = True

    def _switch_section(self, events: list[Event]) -> None:
        # Only a section that produced something is closed: a consumer never saw an empty one open.
        if self._section_has_output:
            events.append(BlockEnd())
        if self._in_thinking and self._single_section:
            self._open = None            # from now on "<think>" is answer text
        self._in_thinking = not self._in_thinking
        self._section_has_output = False
        self._strip_leading_whitespace = True
