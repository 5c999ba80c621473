"""One citable source (a document or a search result with citations enabled) → the numbered text the model reads,
and Anthropic's citation object for each of its passages.

Every citation is made here, from the source as the client sent it, before anything is generated: `cited_text` is
the passage's own text (`text[start:end]` of a plain-text document, a PDF page's extracted text, a content block's
text), and its indices are those of the passage. The model only ever picks a passage by number, so a citation it
makes is one of these, exact by construction.
"""
from __future__ import annotations

from ...engine.citations.markers import marker
from ..documents import PdfText, document_body, wrapped_document
from ..url_fetch import UrlFetcher
from .layout import numbered_lines, search_result_layout
from .passages import sentence_spans


class Numbering:
    """Hands out passage numbers in the order the prompt shows them, and keeps each passage's citation."""

    def __init__(self):
        self.citations: list[dict] = []

    def mark(self, citation: dict) -> str:
        self.citations.append(citation)
        return marker(len(self.citations))


def cited_document(block, path: str, fetcher: UrlFetcher | None, document_index: int, numbering: Numbering) -> str:
    """The document with each passage after its mark; its citations go to `numbering`."""
    source = block.source if isinstance(block.source, dict) else {}
    body = document_body(block, path, fetcher)           # reads and checks it, errors naming `path`
    title = getattr(block, "title", None)
    file_id = source.get("file_id")
    common = {"document_index": document_index, "document_title": title if isinstance(title, str) else None}
    tail = {"file_id": file_id if isinstance(file_id, str) else None}
    if source.get("type") == "content":
        content = source["content"]
        blocks = [content] if isinstance(content, str) else [item["text"] for item in content]
        lines = [(numbering.mark({"type": "content_block_location", "cited_text": text, **common,
                                  "start_block_index": index, "end_block_index": index + 1, **tail}), text)
                 for index, text in enumerate(blocks) if text.strip()]
        return wrapped_document(block, numbered_lines(lines))
    if isinstance(body, PdfText):
        pages = []
        for number, page in enumerate(body.pages, 1):
            lines = [(numbering.mark({"type": "page_location", "cited_text": span.of(page), **common,
                                      "start_page_number": number, "end_page_number": number + 1, **tail}),
                      span.of(page).strip()) for span in sentence_spans(page)]
            pages.append(f'<page number="{number}">\n{numbered_lines(lines)}\n</page>')
        return wrapped_document(block, "\n".join(pages))
    lines = [(numbering.mark({"type": "char_location", "cited_text": span.of(body), **common,
                              "start_char_index": span.start, "end_char_index": span.end, **tail}),
              span.of(body).strip()) for span in sentence_spans(body)]
    return wrapped_document(block, numbered_lines(lines))


def cited_search_result(block, search_result_index: int, numbering: Numbering) -> str:
    """The search result with each of its text blocks after its mark; their citations go to `numbering`."""
    lines = [(numbering.mark({"type": "search_result_location", "cited_text": part.text,
                              "search_result_index": search_result_index, "source": block.source,
                              "title": block.title, "start_block_index": index, "end_block_index": index + 1}),
              part.text) for index, part in enumerate(block.content)]
    return search_result_layout(block, numbered_lines(lines))
