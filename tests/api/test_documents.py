"""document blocks on every model: text, content and base64 PDF sources become text the model reads, rendered with
their title and context; unreadable PDFs and url sources are clear 400s that name the block."""
from __future__ import annotations

import base64

import pytest

from api_helpers import assert_error, body
from pdf_bytes import pdf_bytes

TITLE_AND_CONTEXT = {"title": "Notes", "context": "Written by the user"}


def document(source: dict, **fields) -> dict:
    return {"type": "document", "source": source, **fields}


def pdf(*pages: str) -> dict:
    return {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(pdf_bytes(*pages)).decode()}


def rendered_user_turn(client, engine, block) -> str:
    messages = [{"role": "user", "content": [block, {"type": "text", "text": "Summarize it."}]}]
    assert client.post("/v1/messages", json=body(messages=messages)).status_code == 200
    return engine.requests[-1].messages[-1]["content"]


@pytest.mark.parametrize("source, text", [
    ({"type": "text", "media_type": "text/plain", "data": "The cat sat."}, "The cat sat."),
    ({"type": "content", "content": [{"type": "text", "text": "Part one."}, {"type": "text", "text": "Two."}]},
     "Part one.\n\nTwo."),
    ({"type": "content", "content": "Just a string."}, "Just a string."),
    ({"type": "base64", "media_type": "text/plain", "data": base64.b64encode("Grüße".encode()).decode()}, "Grüße"),
])
def test_text_documents_are_rendered_with_title_and_context(client, engine, source, text):
    turn = rendered_user_turn(client, engine, document(source, **TITLE_AND_CONTEXT))
    assert turn == ("<document>\n<source>Notes</source>\n<context>Written by the user</context>\n"
                    f"<document_content>\n{text}\n</document_content>\n</document>\n\nSummarize it.")


def test_a_pdf_is_read_page_by_page(client, engine):
    turn = rendered_user_turn(client, engine, document(pdf("First page here", "Second page there")))
    assert '<page number="1">\nFirst page here\n</page>\n<page number="2">\nSecond page there\n</page>' in turn
    assert turn.startswith("<document>\n<document_content>\n")


def test_count_tokens_counts_the_extracted_text(client):
    messages = [{"role": "user", "content": [document(pdf("Alpha beta gamma")), {"type": "text", "text": "Hi"}]}]
    counted = client.post("/v1/messages/count_tokens", json=body(messages=messages, max_tokens=...)).get_json()
    usage = client.post("/v1/messages", json=body(messages=messages)).get_json()["usage"]
    assert counted["input_tokens"] == usage["input_tokens"] + usage["cache_read_input_tokens"] \
        + usage["cache_creation_input_tokens"]
    assert counted["input_tokens"] > 3 + 3        # the page's words are counted, not just the question


@pytest.mark.parametrize("source, message", [
    ({"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(b"hello").decode()},
     "messages.0.content.0: the document is not a PDF (its data does not start with %PDF-)"),
    ({"type": "base64", "media_type": "application/pdf",
      "data": base64.b64encode(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\nendobj\n%%EOF").decode()},
     "messages.0.content.0: the PDF could not be read"),
    ({"type": "base64", "media_type": "application/pdf", "data": "%%%not base64"},
     "messages.0.content.0.source.data: not valid base64"),
    ({"type": "url", "url": "http://127.0.0.1/secret.pdf"},
     "messages.0.content.0.source: url sources are not fetched by this server"),
    ({"type": "file", "file_id": "file_1"}, "messages.0.content.0.source.file_id: file file_1 not found"),
    ({"type": "text", "media_type": "text/html", "data": "<b>x</b>"},
     "messages.0.content.0.source.media_type: must be 'text/plain', not 'text/html'"),
    ({"type": "base64", "media_type": "image/png", "data": "aGk="},
     "messages.0.content.0.source.media_type: must be 'application/pdf' or 'text/plain'"),
])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_unreadable_documents_are_a_400_that_names_the_block(client, engine, path, source, message):
    messages = [{"role": "user", "content": [document(source), {"type": "text", "text": "Read it."}]}]
    fields = {"messages": messages} if path == "/v1/messages" else {"messages": messages, "max_tokens": ...}
    error = assert_error(client.post(path, json=body(**fields)), 400, "invalid_request_error")
    assert error.startswith(message)
    assert engine.requests == []


def test_documents_in_tool_results_are_read_too(client, engine):
    messages = [{"role": "user", "content": "Fetch the report."},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "fetch", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                    document({"type": "text", "media_type": "text/plain", "data": "Quarterly numbers."})]}]}]
    tools = [{"name": "fetch", "input_schema": {"type": "object"}}]
    assert client.post("/v1/messages", json=body(messages=messages, tools=tools)).status_code == 200
    assert "Quarterly numbers." in engine.requests[-1].messages[-1]["content"]
