"""Citation marks → Anthropic's cited text blocks, streamed as Anthropic streams them.

The engine reports each mark as a `CitationMark` right after the text it follows. That text is the cited claim: the
open text block gets a `citations_delta` with the passage's citation object, and the block is closed when more text
comes, so the next words start a block of their own. Marks in a row ("[1][2]") all go to the same block. A mark
before any text (the answer opens with "[1]") waits for the first text block, is sent right after its start, and
that block goes on to the next mark.

So the uncited text and the cited claims alternate as separate blocks, as in Anthropic's responses:
`"The grass is green [1]. The sky is blue [2]."` → "The grass is green" (cites 1), ". The sky is blue" (cites 2),
"." — and the SDK's stream helpers, which append every citations_delta to its block's `citations`, assemble the same
message as `stream.collect_message`.
"""
from __future__ import annotations

from ...engine.events import CitationMark, TextDelta
from ..stream import BlockAssembler


def block_assembler(input_tokens: int, *, citations: tuple = (), **options) -> BlockAssembler:
    """The assembler for a generation: one that reads citation marks when the request has citable passages."""
    if citations:
        return CitingBlockAssembler(input_tokens, citations=citations, **options)
    return BlockAssembler(input_tokens, **options)


class CitingBlockAssembler(BlockAssembler):
    def __init__(self, input_tokens: int, *, citations: tuple, **options):
        super().__init__(input_tokens, **options)
        self._citations = citations         # passage n's citation object is citations[n - 1]
        self._cited = False                 # the open text block has its citations: more text is a new block
        self._waiting: list[dict] = []      # citations of marks that came before any text block

    def feed(self, event) -> list[tuple[str, dict]]:
        if isinstance(event, CitationMark):
            citation = self._citations[event.passage - 1]
            if self.open_kind != "text":
                self._waiting.append(citation)
                return []
            self._cited = True
            return [self._citation_delta(citation)]
        events = []
        if isinstance(event, TextDelta) and event.text and self.open_kind == "text" and self._cited:
            events = self._close()
        opened = self.index
        events += super().feed(event)
        if self.open_kind == "text" and self.index != opened:
            self._cited = False
            start = max(i for i, (name, _) in enumerate(events) if name == "content_block_start")
            waiting, self._waiting = self._waiting, []
            events[start + 1:start + 1] = [self._citation_delta(citation) for citation in waiting]
        return events

    def _citation_delta(self, citation: dict) -> tuple:
        return self._delta({"type": "citations_delta", "citation": citation})
