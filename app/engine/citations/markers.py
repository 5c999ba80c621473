"""The mark an answer cites a passage with, `[n]` (n counts the request's passages from 1), and the parser that
takes the marks out of the answer's text as it streams.

A mark follows the words it supports ("The sky is blue [2]."): the text before it is what it cites. The whitespace
in front of a mark belongs to the mark, not to the text (the text reads "The sky is blue."), so it is held back
until the next character shows whether a mark comes. A mark split across pieces (`[1` then `2]`) is held until it
is whole; one the output ends inside (max_tokens, a stop sequence) is dropped, as it never became a mark.
"""
from __future__ import annotations

import re

from ..events import CitationMark, Event, TextDelta

_MARK = re.compile(r"\s*\[([1-9][0-9]*)\]")
# What may still be the start of a mark: trailing whitespace, then at most "[" and digits.
_UNDECIDED_TAIL = re.compile(r"\s*(?:\[[0-9]*)?\Z")


def marker(passage: int) -> str:
    """The mark of passage `passage` (1-based), as the prompt shows it and the answer writes it."""
    return f"[{passage}]"


class CitationMarkParser:
    """Answer text → TextDelta and CitationMark events. It wraps the parser that finds tool calls in the answer
    (`tools.setup`) and reads the text that parser passes on; calls, and the text around them, go through in order.
    `passages`: how many there are; a mark of any other number (possible only where the grammar is not held, e.g.
    after a drifted tool call was recovered) stays text."""

    def __init__(self, inner, passages: int):
        self._inner = inner
        self._passages = passages
        self._held = ""
        self.marks = 0                     # CitationMark events made: a figure for the response

    @property
    def calls(self):
        return self._inner.calls

    @property
    def made_call(self) -> bool:
        return self._inner.made_call

    def feed(self, text: str) -> list[Event]:
        return self._split(self._inner.feed(text))

    def flush(self) -> list[Event]:
        events = self._split(self._inner.flush())
        held, self._held = self._held, ""
        # Whitespace at the very end is text; an unfinished mark is not.
        text = held.split("[", 1)[0] if re.search(r"\[[0-9]+\Z", held) else held
        return events + ([TextDelta(text)] if text else [])

    def _split(self, events: list[Event]) -> list[Event]:
        split: list[Event] = []
        for event in events:
            if isinstance(event, TextDelta):
                split.extend(self._read(event.text))
            else:
                # A call (or the end of a block) comes next: what was held can no longer become a mark.
                held, self._held = self._held, ""
                split.extend([TextDelta(held), event] if held else [event])
        return split

    def _read(self, text: str) -> list[Event]:
        pending = self._held + text
        events: list[Event] = []
        position = 0
        for match in _MARK.finditer(pending):
            passage = int(match.group(1))
            if passage > self._passages:
                continue
            if match.start() > position:
                events.append(TextDelta(pending[position:match.start()]))
            events.append(CitationMark(passage))
            self.marks += 1
            position = match.end()
        rest = pending[position:]
        undecided = _UNDECIDED_TAIL.search(rest).start()
        if undecided > 0:
            events.append(TextDelta(rest[:undecided]))
        self._held = rest[undecided:]
        return events
