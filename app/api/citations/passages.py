"""Splitting a source into the passages a citation can point at, each with its exact place in the source.

Plain text and PDF pages are split into sentences, as Anthropic chunks them: a passage ends after `.`, `!` or `?`
(and any closing quote or bracket) followed by whitespace, or at a line break. Passages tile the text: each one's
span runs to the start of the next, so its `cited_text` carries the whitespace after it, as Anthropic's does
("The grass is green. "), and is always `text[start:end]`. Custom content documents and search results are not
split: each of their text blocks is one passage.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Where one sentence ends and the next begins: after the terminator (and closing quotes or brackets), past the
# whitespace that follows it; or past a line break and the whitespace after it.
_SENTENCE_END = re.compile(r"""[.!?]+["'”’)\]]*[^\S\n]+|[.!?]+["'”’)\]]*(?=\n)|\n\s*""")


@dataclass(frozen=True)
class Span:
    start: int               # the passage is text[start:end]
    end: int

    def of(self, text: str) -> str:
        return text[self.start:self.end]


def sentence_spans(text: str) -> list[Span]:
    """The sentences of `text`, tiling it from its first non-blank character to its end; blank text has none."""
    start = len(text) - len(text.lstrip())
    if start == len(text):
        return []
    spans = []
    for match in _SENTENCE_END.finditer(text, start):
        end = match.end()
        if end <= start:
            continue
        if text[start:end].strip():
            spans.append(Span(start, end))
        elif spans:                       # whitespace alone joins the passage before it
            spans[-1] = Span(spans[-1].start, end)
        start = end
    if start < len(text):
        spans.append(Span(start, len(text)))
    return spans
