"""Hostile input the fuzzer cannot reach cheaply, and the security basics: deep nesting, a huge declared body
(refused from its headers, by the server `thinkserve serve` runs), secrets never logged or echoed."""
from __future__ import annotations

import json
import logging
import socket
import threading

import pytest

from app import cli
from app.config import Config
from app.wsgi_server import create_server

from api_helpers import MODEL, assert_error, body


@pytest.mark.parametrize("depth", [100_000, 5_000])
def test_deeply_nested_json_is_a_400(client, depth):
    raw = "[" * depth + "]" * depth
    for path in ("/v1/messages", "/v1/messages/count_tokens", "/v1/messages/render", "/v1/messages/batches"):
        message = assert_error(client.post(path, data=raw, content_type="application/json"), 400,
                               "invalid_request_error")
        assert "nested too deeply" in message
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("depth", [900, 5_000])
def test_deep_nesting_inside_a_valid_body_is_accepted_or_a_400(client, depth):
    deep = '{"a":' * depth + "{}" + "}" * depth
    schema = '{"type":"object","properties":{"x":' + deep + "}}"
    for field in (f'"metadata":{deep}', f'"tools":[{{"name":"f","input_schema":{schema}}}]'):
        raw = json.dumps(body())[:-1] + "," + field + "}"
        response = client.post("/v1/messages", data=raw, content_type="application/json")
        assert response.status_code in (200, 400), response.get_data(as_text=True)
        if response.status_code == 400:
            assert_error(response, 400, "invalid_request_error")


@pytest.fixture
def early_limit_server(make_app):
    """The app behind `app.wsgi_server.create_server`, as `thinkserve serve` runs it, with a 1 kB body limit."""
    app = make_app(max_request_bytes=1_000)
    server = create_server(app, limit_for=app.extensions["body_limit_for"], host="127.0.0.1", port=0, threads=2,
                           channel_request_lookahead=1, asyncore_loop_timeout=0.05)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield server.effective_port
    server.trigger.pull_trigger(lambda: [channel.close() for channel in list(server._map.values())])
    thread.join(timeout=5)
    server.task_dispatcher.shutdown(timeout=2)


def raw_exchange(port: int, head: bytes, timeout_s: float = 10) -> bytes:
    """Send `head` (headers and a little body), then read the reply until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(head)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def test_a_huge_declared_body_is_refused_from_its_headers(early_limit_server):
    # 40 GB declared, 12 bytes sent: a server that waited for the body would never answer (the recv would time out).
    reply = raw_exchange(early_limit_server, b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                                             b"\r\nContent-Length: 40000000000\r\n\r\n{\"model\": \"x")
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"request-id: req_" in head.lower()
    error = json.loads(payload)
    assert list(error) == ["type", "error", "request_id"]
    assert error["error"] == {"type": "request_too_large",
                              "message": "request body is 40000000000 bytes; the limit is 1000"}


def test_a_body_under_the_limit_still_reaches_the_app(early_limit_server):
    payload = json.dumps(body()).encode()
    reply = raw_exchange(early_limit_server, b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                             b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                             % (len(payload), payload))
    assert reply.startswith(b"HTTP/1.1 200")
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["model"] == MODEL


def test_the_api_key_is_never_logged(make_app, caplog):
    secret = "sk-very-secret-value-123"
    caplog.set_level(logging.DEBUG)
    config = Config(api_key=secret, signing_key="signing-secret-456", host="0.0.0.0")
    cli.log_effective_config(config, {"api_key": "flag", "signing_key": "env", "host": "flag"})
    client = make_app(api_key=secret).test_client()
    assert client.post("/v1/messages", json=body(), headers={"x-api-key": secret}).status_code == 200
    wrong = client.post("/v1/messages", json=body(), headers={"x-api-key": secret + "x"})
    assert secret not in assert_error(wrong, 401, "authentication_error")
    client.post("/v1/messages", json=body(), headers={"authorization": f"Bearer {secret}"})
    assert "(set)" in caplog.text
    assert secret not in caplog.text and "signing-secret-456" not in caplog.text


@pytest.mark.parametrize("host, api_key, warned", [
    ("0.0.0.0", "", True), ("192.168.1.5", "", True), ("::", "", True), ("example.org", "", True),
    ("0.0.0.0", "k", False), ("127.0.0.1", "", False), ("localhost", "", False), ("::1", "", False),
    ("127.0.0.2", "", False)])
def test_an_open_address_without_a_key_warns_at_start(caplog, host, api_key, warned):
    caplog.set_level(logging.INFO)
    cli.warn_if_open(Config(host=host, api_key=api_key))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert bool(warnings) == warned
    if warned:
        assert "--api-key" in warnings[0].getMessage() and host in warnings[0].getMessage()


class LeakyEngine:
    """Raises an exception whose text holds a secret and a path, where the API calls the engine first."""

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def __init__(self, inner):
        self._inner = inner

    def prepare(self, request):
        raise RuntimeError("password=hunter2 at /srv/secret/config.py line 12\nTraceback (most recent call last)")


def test_an_unexpected_error_names_only_its_type(make_app, engine, caplog):
    client = make_app(LeakyEngine(engine)).test_client()
    for path, request in (("/v1/messages", body()), ("/v1/messages", body(stream=True)),
                          ("/v1/messages/count_tokens", {"model": MODEL, "messages": body()["messages"]})):
        response = client.post(path, json=request)
        message = assert_error(response, 500, "api_error", "internal server error: RuntimeError")
        assert "hunter2" not in response.get_data(as_text=True) and "Traceback" not in message
    assert "hunter2" in caplog.text      # the operator's log keeps the whole story


def test_a_lone_surrogate_is_a_400_on_every_endpoint(client):
    # Found by tests/api/test_fuzz.py: "\ud800" is valid JSON but not Unicode; it used to reach the response
    # encoder (render, messages) and come back as a 500.
    raw = '{"model": "%s", "max_tokens": 10, "messages": [{"role": "user", "content": "a\\ud800b"}]}' % MODEL
    batch = '{"requests": [{"custom_id": "a", "params": %s}]}' % raw
    for path, data in (("/v1/messages", raw), ("/v1/messages/count_tokens", raw), ("/v1/messages/render", raw),
                       ("/v1/messages/batches", batch)):
        message = assert_error(client.post(path, data=data, content_type="application/json"), 400,
                               "invalid_request_error")
        assert "lone UTF-16 surrogate" in message
    paired = raw.replace("\\ud800", "\\ud83d\\ude00")     # a surrogate pair is an emoji: fine
    response = client.post("/v1/messages/render", data=paired, content_type="application/json")
    assert response.status_code == 200 and "\U0001f600" in response.get_json()["prompt"]


def test_a_failed_generation_says_generation_failed_once(client, engine):
    # Found by tests/e2e/test_e2e_generation_failure.py: the step loop's message already starts with
    # "generation failed: ", and the API used to add it again.
    from app.engine.events import Failed, TextDelta
    from sse_frames import parse_sse
    failure = "generation failed: OutOfMemoryError: CUDA out of memory"
    engine.script([TextDelta("partial"), Failed(failure)])
    assert_error(client.post("/v1/messages", json=body()), 500, "api_error", failure)
    engine.script([TextDelta("partial"), Failed(failure)])
    events = parse_sse(client.post("/v1/messages", json=body(stream=True)).get_data(as_text=True))
    assert events[-1][0] == "error" and events[-1][1]["error"]["message"] == failure
    assert client.post("/v1/messages", json=body()).status_code == 200
