"""Faults against a real server process: clients that vanish at every point of a stream, slow clients, a huge
declared body, 100k levels of JSON. After each, the model is free again (`/health`'s engine `in_flight` is 0 and
its `cancelled` count grew) and the next request is answered. Raw sockets where `requests` would hide the fault.
A generation that fails mid-stream has its own server (a test hook): tests/e2e/test_e2e_generation_failure.py.
"""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests

from e2e_server import API_KEY, MODEL
from real_server import real_server_fixture

server = real_server_fixture("e2e-faults-server.log", "--api-key", API_KEY, "--min-thinking-budget", "16",
                             "--ping-interval", "1", scope="module")

LONG = [{"role": "user", "content": "Count from 1 to 2000, separated by commas."}]
HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def post(server, body, path="/v1/messages", **kwargs):
    return requests.post(server.base_url + path, json=body, headers=HEADERS, timeout=kwargs.pop("timeout", 120),
                         **kwargs)


def engine_stats(server) -> dict:
    return requests.get(server.base_url + "/health", timeout=30).json()["engine"]


def wait_until(server, done, deadline_s: float = 120) -> dict:
    """The engine's figures once `done(figures)` holds (the deadline only guards against a hang)."""
    deadline = time.monotonic() + deadline_s
    while not done(stats := engine_stats(server)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return stats


def wait_until_idle(server) -> dict:
    return wait_until(server, lambda stats: stats["in_flight"] == 0)


def assert_next_request_works(server) -> None:
    answer = post(server, {"model": MODEL, "max_tokens": 5, "messages": LONG})
    assert answer.status_code == 200 and answer.json()["usage"]["output_tokens"] >= 1


def assert_model_free_again(server, cancelled_before: int) -> None:
    stats = wait_until(server, lambda s: s["in_flight"] == 0 and s["cancelled"] > cancelled_before)
    assert stats["in_flight"] == 0 and stats["cancelled"] == cancelled_before + 1, stats
    assert_next_request_works(server)


def raw_request(body: bytes, path: str = "/v1/messages", content_length: int | None = None) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nx-api-key: {API_KEY}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body) if content_length is None else content_length}\r\n\r\n")
    return head.encode() + body


def read_reply(sock: socket.socket) -> bytes:
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    return reply


def stream_until(server, body: dict, delta_type: str) -> None:
    """Start a stream, read it up to the first delta of `delta_type`, and hang up."""
    with post(server, {**body, "stream": True}, stream=True) as response:
        assert response.status_code == 200
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("data: ") and f'"type":"{delta_type}"' in line:
                return
    pytest.fail(f"the stream ended without a {delta_type}")


@pytest.mark.parametrize("point, body, delta_type", [
    ("mid-text", {"max_tokens": 4000}, "text_delta"),
    ("mid-thinking", {"max_tokens": 4000, "thinking": {"type": "enabled", "budget_tokens": 3000}}, "thinking_delta"),
    ("mid-tool-call", {"max_tokens": 4000, "tools": [WEATHER], "tool_choice": {"type": "any"}}, "input_json_delta"),
])
def test_a_stream_abandoned_mid_block_frees_the_model(server, point, body, delta_type):
    cancelled_before = wait_until_idle(server)["cancelled"]
    stream_until(server, {"model": MODEL, "messages": LONG, "temperature": 0, **body}, delta_type)
    assert_model_free_again(server, cancelled_before)


def test_a_stream_abandoned_before_its_headers_costs_nothing(server):
    finished_before = wait_until_idle(server)["finished"]
    body = json.dumps({"model": MODEL, "max_tokens": 4000, "messages": LONG, "stream": True, "temperature": 0})
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(raw_request(body.encode()))
    # Gone before a byte came back. waitress drops a request whose client closed before it was dispatched (a
    # stream's headers go out the moment it is submitted); if it did start, it must be cancelled, not finished.
    time.sleep(1)
    stats = wait_until_idle(server)
    assert stats["in_flight"] == 0 and stats["finished"] == finished_before, stats
    assert_next_request_works(server)


def test_a_plain_request_abandoned_frees_the_model(server):
    cancelled_before = wait_until_idle(server)["cancelled"]
    body = json.dumps({"model": MODEL, "max_tokens": 4000, "messages": LONG, "temperature": 0})
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(raw_request(body.encode()))
        deadline = time.monotonic() + 60
        while engine_stats(server)["in_flight"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)          # hang up only once it is generating
    assert_model_free_again(server, cancelled_before)


def test_a_client_trickling_its_body_holds_up_no_one(server):
    body = json.dumps({"model": MODEL, "max_tokens": 5, "messages": LONG}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as slow:
        slow.sendall(raw_request(body[:10], content_length=len(body)))
        # While the slow body is still coming, another client's request is answered in full.
        other = post(server, {"model": MODEL, "max_tokens": 5, "messages": LONG})
        assert other.status_code == 200
        for i in range(10, len(body), 20):
            slow.sendall(body[i:i + 20])
            time.sleep(0.01)
        reply = read_reply_until_length(slow)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["type"] == "message"


def read_reply_until_length(sock: socket.socket) -> bytes:
    """One keep-alive response: headers, then Content-Length bytes."""
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += sock.recv(65536)
    head, _, payload = reply.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(payload) < length:
        payload += sock.recv(65536)
    return head + b"\r\n\r\n" + payload


def test_a_client_reading_its_stream_very_slowly_holds_up_no_one(server):
    cancelled_before = wait_until_idle(server)["cancelled"]
    body = json.dumps({"model": MODEL, "max_tokens": 4000, "messages": LONG, "stream": True, "temperature": 0})
    with socket.socket() as slow:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.settimeout(30)
        slow.connect(("127.0.0.1", server.port))
        slow.sendall(raw_request(body.encode()))
        assert slow.recv(64).startswith(b"HTTP/1.1 200")      # then it reads nothing more for a while
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(
            post(server, {"model": MODEL, "max_tokens": 8, "messages": LONG}))) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert [a.status_code for a in answers] == [200] * 3
        assert engine_stats(server)["in_flight"] == 1         # the slow one is still generating, not stuck
    assert_model_free_again(server, cancelled_before)


@pytest.mark.parametrize("path, declared", [("/v1/messages", 64 * 2**20), ("/v1/messages", 10**12),
                                            ("/v1/messages/batches", 300 * 2**20)])
def test_a_huge_body_is_refused_before_it_is_read(server, path, declared):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(raw_request(b'{"model": "' + b"x" * 1000, path=path, content_length=declared))
        reply = read_reply(sock)      # answered with 1 kB sent, so the rest was never waited for
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), reply[:300]
    error = json.loads(payload)
    assert error["error"]["type"] == "request_too_large" and str(declared) in error["error"]["message"]
    assert f"request-id: {error['request_id']}".lower().encode() in head.lower()
    assert requests.get(server.base_url + "/health", timeout=30).status_code == 200


def test_100k_levels_of_json_are_a_400(server):
    response = requests.post(server.base_url + "/v1/messages", data="[" * 100_000 + "]" * 100_000, timeout=60,
                             headers={**HEADERS, "content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == {"type": "invalid_request_error", "message": "request body is nested too deeply"}
    assert post(server, {"model": MODEL, "max_tokens": 3, "messages": LONG}).status_code == 200
