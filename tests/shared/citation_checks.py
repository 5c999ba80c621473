"""Checks that a Message's citations are exact, recomputed from the request as the client sent it (independently of
the server's own passage splitting): every `cited_text` is the source's text at the citation's indices."""
from __future__ import annotations

import base64
import io
import re

from pypdf import PdfReader


def sources(body: dict) -> tuple[list[dict], list[dict]]:
    """(document blocks, search_result blocks) of a Messages body, each in request order, tool results included."""
    documents, results = [], []
    for message in body["messages"]:
        content = message["content"] if isinstance(message["content"], list) else []
        for block in content:
            parts = block["content"] if block["type"] == "tool_result" and isinstance(block.get("content"), list) \
                else [block]
            for part in parts:
                {"document": documents, "search_result": results}.get(part["type"], []).append(part)
    return documents, results


def _pdf_pages(source: dict) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(base64.b64decode(source["data"]))).pages]


def check_citation(citation: dict, body: dict) -> None:
    documents, results = sources(body)
    kind = citation["type"]
    if kind == "search_result_location":
        result = results[citation["search_result_index"]]
        assert (citation["source"], citation["title"]) == (result["source"], result["title"])
        start, end = citation["start_block_index"], citation["end_block_index"]
        assert 0 <= start < end <= len(result["content"])
        assert citation["cited_text"] == "".join(part["text"] for part in result["content"][start:end])
        return
    document = documents[citation["document_index"]]
    assert citation["document_title"] == document.get("title")
    source = document["source"]
    if kind == "char_location":
        text = source["data"] if source["type"] == "text" else base64.b64decode(source["data"]).decode()
        start, end = citation["start_char_index"], citation["end_char_index"]
        assert 0 <= start < end <= len(text)
        assert citation["cited_text"] == text[start:end] and citation["cited_text"].strip()
    elif kind == "page_location":
        pages = _pdf_pages(source)
        start, end = citation["start_page_number"], citation["end_page_number"]
        assert 1 <= start < end <= len(pages) + 1
        assert citation["cited_text"].strip() and citation["cited_text"] in "".join(pages[start - 1:end - 1])
    elif kind == "content_block_location":
        blocks = source["content"] if isinstance(source["content"], list) else [{"text": source["content"]}]
        start, end = citation["start_block_index"], citation["end_block_index"]
        assert 0 <= start < end <= len(blocks)
        assert citation["cited_text"] == "".join(block["text"] for block in blocks[start:end])
    else:
        raise AssertionError(f"unexpected citation type {kind!r}")


def check_message(message: dict, body: dict) -> int:
    """Every citation of the message is exact, and no text block shows anything that starts like a mark (a `[`
    then a digit): valid marks are taken out, and the grammar lets no other through. Returns how many citations."""
    count = 0
    for block in message["content"]:
        if block["type"] != "text":
            continue
        assert not re.search(r"\[[0-9]", block["text"]), block["text"]
        for citation in block.get("citations") or []:
            check_citation(citation, body)
            count += 1
    return count
