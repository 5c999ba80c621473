"""Text pieces from the streamer → engine events, with stop sequences applied.

Order: the parser first splits the output into thinking and text; stop sequences are then matched on the text
sections only, as the Messages API does (a stop sequence ends the answer, it does not cut thinking short). A stop
sequence cannot span two sections, so the matcher's held tail is released whenever a section ends.
"""
from __future__ import annotations

from collections.abc import Callable

from .events import Event, TextDelta
from .parser import OutputParser
from .stop_sequences import StopSequenceMatcher


class OutputPipeline:
    """Feed it decoded text; it calls `emit` with each event, in order, until a stop sequence matches."""

    def __init__(self, parser: OutputParser, stop_matcher: StopSequenceMatcher, emit: Callable[[Event], None]):
        self.parser = parser
        self.stop_matcher = stop_matcher
        self._emit = emit

    @property
    def stop_sequence(self) -> str | None:
        return self.stop_matcher.matched

    def feed(self, text: str) -> None:
        if self.stop_sequence is None:
            self._route(self.parser.feed(text))

    def finish(self) -> None:
        """The model stopped: release what was held back as possible markers (unless a stop sequence ended it)."""
        if self.stop_sequence is None:
            self._route(self.parser.flush())
            self._release_held_text()

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
