"""Text pieces from the streamer → engine events, with stop sequences applied.

Order: the parser first splits the output into thinking and answer; the tool-call parser (when the request has
tools) splits the answer into text and calls; stop sequences are then matched on the text only, as the Messages API
does (a stop sequence ends the answer; it neither cuts thinking short nor matches inside a call's JSON). A stop
sequence cannot span two sections, so the matcher's held tail is released whenever a section ends.
"""
from __future__ import annotations

from collections.abc import Callable

from ..events import Event, TextDelta
from ..thinking.parser import OutputParser
from .stop_sequences import StopSequenceMatcher
from ..tools.parser import ToolCallParser


class OutputPipeline:
    """Feed it decoded text; it calls `emit` with each event, in order, until a stop sequence matches."""

    def __init__(self, parser: OutputParser, stop_matcher: StopSequenceMatcher, emit: Callable[[Event], None],
                 tool_parser: ToolCallParser | None = None):
        self.parser = parser
        self.tool_parser = tool_parser
        self.stop_matcher = stop_matcher
        self._emit = emit

    @property
    def stop_sequence(self) -> str | None:
        return self.stop_matcher.matched

    def feed(self, text: str) -> None:
        if self.stop_sequence is None:
            self._route(self._split_calls(self.parser.feed(text)))

    def finish(self) -> None:
        """The model stopped: release what was held back as possible markers (unless a stop sequence ended it)."""
        if self.stop_sequence is None:
            self._route(self._split_calls(self.parser.flush()))
            if self.tool_parser is not None:
                self._route(self.tool_parser.flush())
            self._release_held_text()

    def _split_calls(self, events: list[Event]) -> list[Event]:
        if self.tool_parser is None:
            return events
        # Thinking events pass as they are: the one thinking section comes before any answer text, so the call
        # parser has nothing held when they arrive.
        split: list[Event] = []
        for event in events:
            split.extend(self.tool_parser.feed(event.text) if isinstance(event, TextDelta) else (event,))
        return split

    def _route(self, events: list[Event]) -> None:
        for event in events:
            if self.stop_sequence is not None:
                return                       # everything after the stop sequence is dropped
            if isinstance(event, TextDelta):
                safe, _ = self.stop_matcher.feed(event.text)
                if safe:
                    self._emit(TextDelta(safe))
            else:
                self._release_held_text()
                self._emit(event)

    def _release_held_text(self) -> None:
        held = self.stop_matcher.flush()
        if held:
            self._emit(TextDelta(held))
