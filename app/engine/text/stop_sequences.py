"""Stop sequences, matched incrementally on decoded text.

Matching is done on text, not token ids, because a stop string can be split over tokens in many ways ("las" +
"topper"), including a token that overhangs the end of it. The matcher never releases text that could still turn
out to be the start of a stop sequence, so a client never sees any part of one. The step loop reads the matcher's
verdict after every token, so a row ends on the very token that completed the match.
"""
from __future__ import annotations

from .holdback import undecided_tail_length


class StopSequenceMatcher:
    """Feed it text pieces in order; it returns the text that is safe to show and, once, the sequence that matched.

    >>> m = StopSequenceMatcher(["\\n\\nHuman:"])
    >>> m.feed("Hi!\\n")
    ('Hi!', None)
    >>> m.feed("\\nHuman: next")
    ('', '\\n\\nHuman:')
    """

    def __init__(self, stop_sequences: tuple[str, ...] | list[str]):
        # An empty string would match before any output; the api layer rejects it, and here it simply never matches.
        self.stop_sequences = tuple(s for s in stop_sequences if s)
        self.matched: str | None = None
        self._held = ""

    def feed(self, text: str) -> tuple[str, str | None]:
        """Returns (text safe to emit now, the stop sequence completed by this piece or None).

        After a match everything else is discarded: later calls return ("", None).
        """
        if self.matched is not None:
            return "", None
        pending = self._held + text
        match = self._earliest_match(pending)
        if match is not None:
            start, sequence = match
            self.matched, self._held = sequence, ""
            return pending[:start], sequence
        keep = undecided_tail_length(pending, self.stop_sequences)
        self._held = pending[len(pending) - keep:]
        return pending[:len(pending) - keep], None

    def flush(self) -> str:
        """The held-back tail, released because the output ended before it could become a stop sequence."""
        held, self._held = self._held, ""
        return held

    def _earliest_match(self, text: str) -> tuple[int, str] | None:
        # The sequence that *completes* first wins, as it would have token by token; on a tie the longer one, which
        # started earlier, so less text is shown.
        best: tuple[int, int, str] | None = None
        for sequence in self.stop_sequences:
            start = text.find(sequence)
            if start < 0:
                continue
            candidate = (start + len(sequence), start, sequence)
            if best is None or candidate[:2] < best[:2]:
                best = candidate
        return None if best is None else (best[1], best[2])
