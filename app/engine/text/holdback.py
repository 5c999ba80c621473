"""How much of a streamed text's tail to hold back because it could still become a marker.

Stop sequences and thinking markers are matched on decoded text that arrives a token at a time, so a marker can be
split over several pieces ("</th" + "ink>"). Whoever matches them releases text only once it cannot be the start of
a marker any more; this module answers "how many trailing characters are still undecided".
"""
from __future__ import annotations

from collections.abc import Iterable


def undecided_tail_length(text: str, markers: Iterable[str]) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of one of `markers`.

    A complete marker is not a *proper* prefix: the caller finds complete markers with `str.find` first, and only
    asks this for the text after the last one.

    >>> undecided_tail_length("hello </th", ["</think>"])
    4
    >>> undecided_tail_length("hello", ["</think>"])
    0
    """
    longest = 0
    for marker in markers:
        # Try the longest candidate first; anything not longer than what another marker already holds is moot.
        for length in range(min(len(marker) - 1, len(text)), longest, -1):
            if text.endswith(marker[:length]):
                longest = length
                break
    return longest
