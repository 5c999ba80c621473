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


def engine_stats(server) -> dict:
    health = requests.get(server.base_url + "/health", timeout=30)
    assert health.status_code == 200
    return health.json()["engine"]


def wait_until_idle(server, deadline_s: float = 120) -> dict:
    """The engine's figures once nothing runs or waits. The deadline only keeps a broken server from hanging the
    suite; how fast it gets there is bench/'s business, not a test's."""
    deadline = time.monotonic() + deadline_s
    while True:
        stats = engine_stats(server)
        if stats["in_flight"] == 0 or time.monotonic() > deadline:
            return stats
        time.sleep(0.2)


def test_events_are_flushed_while_generating(server):
    with post(server, "/v1/messages", {"model": MODEL, "max_tokens": 4000, "messages": LONG, "stream": True,
                                       "temperature": 0}, stream=True) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        names = []
        for _, name, data in events:
            names.append(name)
            assert data["type"] == name
            if name == "content_block_delta":
                break
        # A delta has reached us while its generation is still going: events are sent as they are made.
        assert engine_stats(server)["in_flight"] == 1
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    wait_until_idle(server)


def test_health_answers_during_a_generation(server):
    with post(server, "/v1/messages", {"model": MODEL, "max_tokens": 300, "messages": LONG, "stream": True},
              stream=True) as response:
        events = sse_events(response)
        next(events)
        health = requests.get(server.base_url + "/health", timeout=30)
        assert health.status_code == 200 and health.json()["model"] == MODEL
        assert health.json()["engine"]["in_flight"] == 1                # ours, waiting or running
        response.close()
    wait_until_idle(server)


def test_disconnected_stream_is_cancelled(server):
    cancelled_before = wait_until_idle(server)["cancelled"]
    with post(server, "/v1/messages", {"model": MODEL, "max_tokens": 4000, "messages": LONG, "stream": True,
                                       "temperature": 0}, stream=True) as response:
        for _, name, _ in sse_events(response):
            if name == "content_block_delta":
                break
    stats = wait_until_idle(server)
    assert stats["cancelled"] == cancelled_before + 1 and stats["in_flight"] == 0
    assert post(server, "/v1/messages", {"model": MODEL, "max_tokens": 5, "messages": LONG}).status_code == 200


def test_disconnected_plain_request_is_cancelled(server):
    cancelled_before = wait_until_idle(server)["cancelled"]
    try:
        post(server, "/v1/messages", {"model": MODEL, "max_tokens": 4000, "messages": LONG, "temperature": 0},
             timeout=2)
    except requests.exceptions.ReadTimeout:
        pass   # the client gave up and closed its connection
    stats = wait_until_idle(server)
    assert stats["cancelled"] == cancelled_before + 1 and stats["in_flight"] == 0
    assert post(server, "/v1/messages", {"model": MODEL, "max_tokens": 5, "messages": LONG}).status_code == 200


def test_full_queue_is_529_with_retry_after(small_server):
    body = {"model": MODEL, "max_tokens": 4000, "messages": LONG, "stream": True, "temperature": 0}
    running = post(small_server, "/v1/messages", body, stream=True)      # the one row the batch may hold
    next(sse_events(running))
    queued = post(small_server, "/v1/messages", body, stream=True)       # the one waiting place
    try:
        refused = post(small_server, "/v1/messages", {**body, "stream": False})
        assert refused.status_code == 529
        assert refused.json()["error"]["type"] == "overloaded_error"
        assert int(refused.headers["retry-after"]) >= 1
    finally:
        running.close()
        queued.close()
    stats = wait_until_idle(small_server)
    assert stats["cancelled"] == 2
    assert post(small_server, "/v1/messages", {"model": MODEL, "max_tokens": 5, "messages": LONG}).status_code == 200


def test_thirty_two_simultaneous_requests_all_get_answers(server):
    results = []

    def one(i):
        results.append(post(server, "/v1/messages", {"model": MODEL, "max_tokens": 8, "temperature": 0,
                                                     "messages": [{"role": "user", "content": f"Say {i}."}]}))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in results] == [200] * 32
    assert all(r.json()["usage"]["output_tokens"] >= 1 for r in results)


def test_a_repeated_prompt_is_read_from_the_cache_and_usage_adds_up(server):
    body = {"model": MODEL, "max_tokens": 6, "temperature": 0, "messages": [
        {"role": "user", "content": "Here is a long shared instruction. " * 20 + "Now say hi."}]}
    first, second = (post(server, "/v1/messages", body).json() for _ in range(2))
    counted = post(server, "/v1/messages/count_tokens", {"model": MODEL, "messages": body["messages"]}).json()
    for message in (first, second):
        usage = message["usage"]
        assert usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"] \
            == counted["input_tokens"]
    assert second["usage"]["cache_read_input_tokens"] == counted["input_tokens"] - 1
    assert second["content"] == first["content"]
    marked = {**body, "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}]}
    written = post(server, "/v1/messages", marked).json()["usage"]
    assert written["input_tokens"] == 0 and written["cache_creation_input_tokens"] > 0
