"""A generation that raises mid-stream (an out-of-memory error, injected by the test hook in
app/engine/scheduler/fault_injection.py) reaches the client as `event: error` in the envelope, and the server goes
on serving. Its own server: the hook fires once per process."""
from __future__ import annotations

import json

import requests

from e2e_server import API_KEY, MODEL
from real_server import real_server_fixture

server = real_server_fixture("e2e-generation-failure-server.log", "--api-key", API_KEY, scope="module",
                             env={"THINKSERVE_TEST_OOM_AFTER_DECODE_STEPS": "5"})

HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
BODY = {"model": MODEL, "max_tokens": 200, "temperature": 0,
        "messages": [{"role": "user", "content": "Count from 1 to 2000, separated by commas."}]}


def test_an_out_of_memory_error_mid_stream_is_an_error_event_and_the_next_request_works(server):
    with requests.post(server.base_url + "/v1/messages", json={**BODY, "stream": True}, headers=HEADERS,
                       stream=True, timeout=120) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines(decode_unicode=True) if line]
    events = [(lines[i][len("event: "):], json.loads(lines[i + 1][len("data: "):])) for i in range(0, len(lines), 2)]
    names = [name for name, _ in events]
    assert "content_block_delta" in names              # some text went out before the failure: mid-stream
    assert names[-1] == "error" and "message_stop" not in names
    error = events[-1][1]
    assert list(error) == ["type", "error", "request_id"] and error["request_id"] == response.headers["request-id"]
    assert error["error"]["type"] == "api_error"
    assert error["error"]["message"].startswith("generation failed: OutOfMemoryError")
    assert "Traceback" not in error["error"]["message"]

    again = requests.post(server.base_url + "/v1/messages", json=BODY, headers=HEADERS, timeout=120)
    assert again.status_code == 200 and again.json()["usage"]["output_tokens"] > 5     # past where it failed
    health = requests.get(server.base_url + "/health", timeout=30).json()
    assert health["engine"]["failed"] == 1 and health["engine"]["in_flight"] == 0
