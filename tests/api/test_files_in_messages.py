"""`{"type": "file", "file_id"}` sources in document and image blocks: in Messages, count_tokens and Message
Batches, taking exactly the path the same bytes take inline; a missing file is a 400 naming it, also for a batch
request whose file was deleted while the batch waited."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import time

import pytest

from api_helpers import assert_error, body
from fake_engine import FakeEngine
from image_bytes import image_block, png_bytes
from pdf_bytes import pdf_bytes

HANG_GUARD_S = 30


def upload(client, data: bytes, filename: str, mime_type: str) -> str:
    response = client.post("/v1/files", data={"file": (io.BytesIO(data), filename, mime_type)})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["id"]


def file_block(kind: str, file_id: str, **fields) -> dict:
    return {"type": kind, "source": {"type": "file", "file_id": file_id}, **fields}


def ask(*blocks) -> list[dict]:
    return [{"role": "user", "content": [*blocks, {"type": "text", "text": "Summarize it."}]}]


def user_turn(client, engine, *blocks) -> str:
    response = client.post("/v1/messages", json=body(messages=ask(*blocks)))
    assert response.status_code == 200, response.get_data(as_text=True)
    return engine.requests[-1].messages[-1]["content"]


def count(client, *blocks) -> int:
    response = client.post("/v1/messages/count_tokens", json=body(messages=ask(*blocks), max_tokens=...))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["input_tokens"]


def test_a_text_file_is_a_text_document(client, engine):
    file_id = upload(client, "The launch code is 1234. Grüße.".encode(), "notes.txt", "text/plain")
    turn = user_turn(client, engine, file_block("document", file_id, title="Notes"))
    inline = {"type": "document", "title": "Notes",
              "source": {"type": "text", "media_type": "text/plain", "data": "The launch code is 1234. Grüße."}}
    assert "The launch code is 1234. Grüße." in turn
    assert turn == user_turn(client, engine, inline)
    assert count(client, file_block("document", file_id, title="Notes")) == count(client, inline)


def test_a_pdf_file_is_a_base64_pdf_document(client, engine):
    data = pdf_bytes("Alpha page", "Beta page")
    file_id = upload(client, data, "doc.pdf", "application/pdf")
    turn = user_turn(client, engine, file_block("document", file_id))
    assert '<page number="1">\nAlpha page\n</page>\n<page number="2">\nBeta page\n</page>' in turn
    inline = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                             "data": base64.b64encode(data).decode()}}
    assert turn == user_turn(client, engine, inline)
    response = client.post("/v1/messages/render", json=body(messages=ask(file_block("document", file_id)),
                                                            max_tokens=...))
    assert "Alpha page" in response.get_json()["prompt"]


def test_an_image_file_is_an_image_on_a_vision_model(make_app):
    engine = FakeEngine()
    engine.accepts_images = True
    client = make_app(engine).test_client()
    raw = png_bytes((10, 200, 10))
    file_id = upload(client, raw, "leaf.png", "image/png")
    user_turn(client, engine, file_block("image", file_id))
    [image] = engine.requests[-1].images
    assert image.media_type == "image/png" and image.digest == hashlib.sha256(raw).hexdigest()
    assert count(client, file_block("image", file_id)) == count(client, image_block(raw))


def test_an_image_file_on_a_text_only_model_is_the_usual_400(client):
    file_id = upload(client, png_bytes((1, 2, 3)), "x.png", "image/png")
    message = assert_error(client.post("/v1/messages", json=body(messages=ask(file_block("image", file_id)))),
                           400, "invalid_request_error")
    assert "cannot see images" in message


def test_files_inside_tool_results_are_read(client, engine):
    file_id = upload(client, b"Quarterly numbers.", "q.txt", "text/plain")
    messages = [{"role": "user", "content": "Fetch the report."},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "fetch", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                              "content": [file_block("document", file_id)]}]}]
    tools = [{"name": "fetch", "input_schema": {"type": "object"}}]
    assert client.post("/v1/messages", json=body(messages=messages, tools=tools)).status_code == 200
    assert "Quarterly numbers." in engine.requests[-1].messages[-1]["content"]


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens", "/v1/messages/render"])
def test_a_missing_file_is_a_400_naming_it(client, engine, path):
    fields = {"messages": ask(file_block("document", "file_missing123"))}
    if path != "/v1/messages":
        fields["max_tokens"] = ...
    message = assert_error(client.post(path, json=body(**fields)), 400, "invalid_request_error")
    assert message.startswith("messages.0.content.0.source.file_id: file file_missing123 not found")
    assert engine.requests == []


@pytest.mark.parametrize("kind, data, filename, mime_type, expected", [
    ("document", png_bytes((1, 1, 1)), "a.png", "image/png", "a document block takes"),
    ("document", b"a,b\n1,2\n", "t.csv", "text/csv", "is text/csv"),
    ("document", b"\xff\xfe not utf-8", "n.txt", "text/plain", "not UTF-8"),
    ("image", b"plain words", "w.txt", "text/plain", "an image block takes"),
])
def test_a_file_of_the_wrong_kind_is_a_400(client, kind, data, filename, mime_type, expected):
    file_id = upload(client, data, filename, mime_type)
    message = assert_error(client.post("/v1/messages", json=body(messages=ask(file_block(kind, file_id)))),
                           400, "invalid_request_error")
    assert file_id in message and expected in message


def test_a_deleted_file_is_missing(client):
    file_id = upload(client, b"short-lived", "s.txt", "text/plain")
    assert client.delete(f"/v1/files/{file_id}").status_code == 200
    assert file_id in assert_error(client.post("/v1/messages", json=body(messages=ask(file_block("document",
                                                                                                 file_id)))),
                                   400, "invalid_request_error")


def wait_ended(client, batch_id: str) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while client.get(f"/v1/messages/batches/{batch_id}").get_json()["processing_status"] != "ended":
        assert time.monotonic() < deadline, "the batch did not end"
        time.sleep(0.02)


def create_batch(client, requests: list[dict]) -> str:
    created = client.post("/v1/messages/batches", json={"requests": requests})
    assert created.status_code == 200, created.get_data(as_text=True)
    return created.get_json()["id"]


def results_of(client, batch_id: str) -> dict[str, dict]:
    wait_ended(client, batch_id)
    lines = client.get(f"/v1/messages/batches/{batch_id}/results").get_data(as_text=True).splitlines()
    return {line["custom_id"]: line["result"] for line in map(json.loads, lines)}


def test_a_batch_request_reads_its_file_when_it_runs(apps):
    engine = FakeEngine()
    client = apps(engine).test_client()
    file_id = upload(client, b"Batch-only fact: owls are birds.", "owl.txt", "text/plain")
    batch_id = create_batch(client, [{"custom_id": "owl", "params": body(messages=ask(file_block("document",
                                                                                                   file_id)))}])
    assert results_of(client, batch_id)["owl"]["type"] == "succeeded"
    assert "Batch-only fact: owls are birds." in engine.requests[-1].messages[-1]["content"]


def test_deleting_a_file_a_queued_batch_needs_makes_that_request_error(apps):
    engine = FakeEngine(ready=False)            # nothing runs until the file is gone
    client = apps(engine).test_client()
    file_id = upload(client, b"Needed later.", "later.txt", "text/plain")
    kept = upload(client, b"Still here.", "kept.txt", "text/plain")
    batch_id = create_batch(client, [
        {"custom_id": "gone", "params": body(messages=ask(file_block("document", file_id)))},
        {"custom_id": "kept", "params": body(messages=ask(file_block("document", kept)))}])
    assert client.delete(f"/v1/files/{file_id}").status_code == 200
    engine.ready = True
    client.application.extensions["thinkserve.batches"].runner.wake()
    results = results_of(client, batch_id)
    assert results["kept"]["type"] == "succeeded"
    gone = results["gone"]
    assert gone["type"] == "errored" and gone["error"]["error"]["type"] == "invalid_request_error"
    assert gone["error"]["error"]["message"].startswith(
        f"messages.0.content.0.source.file_id: file {file_id} not found")
    assert ["Still here." in request.messages[-1]["content"] for request in engine.requests] == [True]
