"""The answer's grammar when it may cite: free text in which a mark can only name a passage that exists.

Built from xgrammar's structural tags (`DispatchFormat`): for each digit d, "[d" may appear in the text only as the
start of a whole mark `[n]` with n in 1..passages, and "[d" for a digit no passage number starts with is excluded.
So "[" stays free text ("[a link]", "[ 1 ]"), "[3]" is impossible with two passages, and "[0]", "[1.2]" or an
unclosed "[1" never get through. A tool call cannot hold marks: it is outside the citing text, as its own tag.
"""
from __future__ import annotations

from xgrammar.structural_tag import ConstStringFormat, DispatchFormat, OptionalFormat, OrFormat, SequenceFormat

from .markers import marker

DIGITS = "0123456789"


def citing_text(passages: int, excludes: tuple[str, ...] = ()) -> DispatchFormat:
    """Free text with marks of passages 1..`passages` and nothing that starts like another mark; `excludes`: other
    strings the text may not contain (a tool-call trigger, where a call must follow the text as its own part)."""
    if passages < 1:
        raise ValueError("citing text needs at least one passage")
    marks = [marker(n) for n in range(1, passages + 1)]
    rules, banned = [], []
    for digit in DIGITS:
        opening = "[" + digit
        rests = [mark[len(opening):] for mark in marks if mark.startswith(opening)]
        if rests:
            rules.append((opening, OrFormat(elements=[ConstStringFormat(value=rest) for rest in rests])))
        else:
            banned.append(opening)
    return DispatchFormat(rules=rules, loop=True, excludes=banned + list(excludes))


def citing_text_then_calls(passages: int, trigger: str, calls) -> SequenceFormat:
    """Citing text, then optionally the turn's tool calls (`calls`, a structural-tag format that starts with
    `trigger`), then the end of the turn. Without citations `auto` lets text and calls alternate; with them the
    text comes first, which is how a turn that ends in calls reads anyway."""
    return SequenceFormat(elements=[citing_text(passages, excludes=(trigger,)), OptionalFormat(content=calls)])
