"""`--allow-url-fetch`: url sources of images and documents are fetched (plain http GETs, capped), and every way a
fetch can fail is a 400 naming the block. Off (the default), the same blocks are 400s that say why."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from api_helpers import assert_error, body
from image_bytes import png_bytes
from pdf_bytes import pdf_bytes

FILES = {"/red.png": ("image/png", png_bytes((200, 30, 30))),
         "/list.pdf": ("application/pdf", pdf_bytes("Apples and bread")),
         "/notes.txt": ("text/plain; charset=utf-8", "Grüße from a text file".encode()),
         "/page.html": ("text/html", b"<html></html>"),
         "/huge.png": ("image/png", b"\0" * (5 * 1024 * 1024 + 1))}


class Files(BaseHTTPRequestHandler):
    served: list[str] = []

    def do_GET(self):
        Files.served.append(self.path)
        if self.path not in FILES:
            self.send_error(404)
            return
        media_type, data = FILES[self.path]
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def files_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def fetching(make_app, engine):
    engine.accepts_images = True
    return make_app(engine, allow_url_fetch=True).test_client()


def url_block(kind: str, url: str) -> dict:
    return {"type": kind, "source": {"type": "url", "url": url}}


def rendered(client, block) -> dict:
    messages = [{"role": "user", "content": [block, {"type": "text", "text": "What is it?"}]}]
    response = client.post("/v1/messages/render", json=body(messages=messages))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_a_fetched_image_reaches_the_model(fetching, files_url):
    assert rendered(fetching, url_block("image", files_url + "/red.png"))["images"] == 1


def test_a_fetched_pdf_and_text_file_are_read(fetching, files_url):
    pdf = rendered(fetching, url_block("document", files_url + "/list.pdf"))["prompt"]
    assert '<page number="1">\nApples and bread\n</page>' in pdf
    assert "Grüße from a text file" in rendered(fetching, url_block("document", files_url + "/notes.txt"))["prompt"]


@pytest.mark.parametrize("kind, target, message", [
    ("image", "/missing.png", "messages.0.content.0.source.url: fetching it failed: HTTP 404"),
    ("image", "/page.html", "messages.0.content.0.source.url: the fetched content is text/html, not one of "
                            "image/jpeg, image/png, image/gif, image/webp"),
    ("image", "/huge.png", "messages.0.content.0.source.url: the fetched content exceeds 5242880 bytes"),
    ("document", "/page.html", "messages.0.content.0: the document is not a PDF (its data does not start with %PDF-)"),
    ("image", "file:///etc/passwd", "messages.0.content.0.source.url: must be an http or https URL"),
    ("document", "http://127.0.0.1:1/nothing-listens", None),
])
def test_every_failed_fetch_is_a_400_naming_the_block(fetching, files_url, kind, target, message):
    url = files_url + target if target.startswith("/") else target
    messages = [{"role": "user", "content": [url_block(kind, url), {"type": "text", "text": "?"}]}]
    error = assert_error(fetching.post("/v1/messages", json=body(messages=messages)), 400, "invalid_request_error",
                         message)
    assert error.startswith("messages.0.content.0.source.url: it could not be fetched") or message


@pytest.mark.parametrize("kind", ["image", "document"])
def test_without_the_flag_nothing_is_fetched(make_app, engine, files_url, kind):
    engine.accepts_images = True
    client = make_app(engine).test_client()
    messages = [{"role": "user", "content": [url_block(kind, files_url + "/red.png"), {"type": "text", "text": "?"}]}]
    before = len(Files.served)
    error = assert_error(client.post("/v1/messages", json=body(messages=messages)), 400, "invalid_request_error")
    assert "--allow-url-fetch" in error
    assert len(Files.served) == before
