"""Request pieces shared by the citation tests: Anthropic's own example document and its two citations, a PDF, a
search result."""
from __future__ import annotations

import base64

from pdf_bytes import pdf_bytes

ON = {"enabled": True}
GRASS = {"type": "document", "title": "My Document", "citations": ON,
         "source": {"type": "text", "media_type": "text/plain", "data": "The grass is green. The sky is blue."}}
GRASS_CITATIONS = (
    {"type": "char_location", "cited_text": "The grass is green. ", "document_index": 0,
     "document_title": "My Document", "start_char_index": 0, "end_char_index": 20, "file_id": None},
    {"type": "char_location", "cited_text": "The sky is blue.", "document_index": 0,
     "document_title": "My Document", "start_char_index": 20, "end_char_index": 36, "file_id": None})
QUESTION = {"type": "text", "text": "What colour is the grass?"}


def pdf_document(*pages: str, **fields) -> dict:
    return {"type": "document", "citations": ON, **fields, "source": {
        "type": "base64", "media_type": "application/pdf", "data": base64.b64encode(pdf_bytes(*pages)).decode()}}


def search_result(title: str, *texts: str, citations=ON) -> dict:
    return {"type": "search_result", "source": f"https://example.com/{title.lower()}", "title": title,
            "content": [{"type": "text", "text": text} for text in texts], **({"citations": citations}
                                                                              if citations is not None else {})}
