"""Raw HTTP against the real server: header details, SSE flushing, disconnects, and the full queue."""
import json
import threading
import time

import requests

from e2e_server import API_KEY, MODEL

# A prompt the default model answers at length, so a generation is still running when we act on it.
LONG = [{"role": "user", "content": "Count from 1 to 2000, separated by commas."}]


def post(server, path, body, headers=None, **kwargs):
    return requests.post(server.base_url + path, json=body, timeout=kwargs.pop("timeout", 120),
                         headers={"x-api-key": API_KEY, "anthropic-version": "2023-06-01", **(headers or {})},
                         **kwargs)


def sse_events(response):
    """(arrival time, event name, data) for each SSE event, as it arrives."""
    name = None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            yield time.monotonic(), name, json.loads(line[len("data: "):])


def test_older_header_style_and_request_id(server):
    response = post(server, "/v1/messages?beta=true", {"model": MODEL, "max_tokens": 3, "messages": LONG},
                    headers={"anthropic-beta": "claude-code-20250219,not-a-real-beta-2099-01-01"})
    assert response.status_code == 200
    assert response.headers["request-id"].startswith("req_")
    assert response.headers["content-type"].startswith("application/json")


def test_events_are_flushed_while_generating(server):
    started = time.monotonic()
    with post(server, "/v1/messages", {"model": MODEL, "max_tokens": 120, "messages": LONG, "stream": True,
                                       "temperature": 0}, stream=True) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events(response))
    names = [name for _, name, _ in events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    deltas = [t for t, name, _ in events if name == "content_block_delta"]
    first_event, last_event = events[0][0], events[-1][0]
    # The first event reaches us well before generation ends, and deltas arrive spread over the generation.
    assert first_event - started < (last_event - started) / 2
    assert deltas[len(deltas) // 2] - deltas[0] > 0.2
    assert all(data["type"] == name for _, name, data in events)


def test_health_answers_instantly_during_a_generation(server):
    with post(server, "/v1/messages", {"model": MODEL, "max_tokens": 300, "messages": LONG, "stream": True},
              stream=True) as response:
        events = sse_events(response)
        next(events)
        started = time.monotonic()
        health = requests.get(server.base_url + "/health", timeout=5)
        elapsed = time.monotonic() - started
        assert health.status_code == 200 and health.json()["model"] == MODEL
        assert elapsed < 1.0
        response.close()


def _time_short_request(server) -> float:
    """Seconds for a 5-token request, honouring retry-after on 529 as the SDKs do: the server notices a
    closed connection within its poll interval, not at the very instant the client closes it."""
    started = time.monotonic()
    for _ in range(5):
        response = post(server, "/v1/messages", {"model": MODEL, "max_tokens": 5, "messages": LONG})
        if response.status_code != 529:
            break
        time.sleep(float(response.headers["retry-after"]))
    assert response.status_code == 200
    return time.monotonic() - started


def test_disconnected_stream_is_cancelled(server):
    # 4000 tokens would take a minute or more here; the next request must not wait for them.
    with post(server, "/v1/messages", {"model": MODEL, "max_tokens": 4000, "messages": LONG, "stream": True,
                                       "temperature": 0}, stream=True) as response:
        for _, name, _ in sse_events(response):
            if name == "content_block_delta":
                break
    assert _time_short_request(server) < 10


def test_disconnected_plain_request_is_cancelled(server):
    try:
        post(server, "/v1/messages", {"model": MODEL, "max_tokens": 4000, "messages": LONG, "temperature": 0},
             timeout=2)
    except requests.exceptions.ReadTimeout:
        pass   # the client gave up and closed its connection
    assert _time_short_request(server) < 10


def test_full_queue_is_529_with_retry_after(server):
    body = {"model": MODEL, "max_tokens": 4000, "messages": LONG, "stream": True, "temperature": 0}
    running = post(server, "/v1/messages", body, stream=True)      # occupies the model
    next(sse_events(running))
    queued = post(server, "/v1/messages", body, stream=True)       # fills the queue of one
    try:
        refused = post(server, "/v1/messages", {**body, "stream": False})
        assert refused.status_code == 529
        assert refused.json()["error"]["type"] == "overloaded_error"
        assert int(refused.headers["retry-after"]) >= 1
    finally:
        running.close()
        queued.close()
    assert _time_short_request(server) < 15


def test_concurrent_requests_all_complete(server):
    results = []

    def one():
        results.append(post(server, "/v1/messages", {"model": MODEL, "max_tokens": 4, "messages": LONG}))
    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results) == [200, 200]
