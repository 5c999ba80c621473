"""What every answer to a fuzzed request must be, whatever the body: shared by the fake-engine and real-server fuzz.

- no 5xx except the documented ones (503 while loading, 529 when the queue is full);
- every error Anthropic's envelope, with the same id in a `request-id` header;
- every 200 a valid Message, count, render, batch, or an SSE stream whose events parse and whose counts add up.
"""
from __future__ import annotations

import json

from sse_frames import parse_sse

DOCUMENTED_5XX = {503, 529}
STOP_REASONS = {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal", None}


def check_answer(path: str, status: int, headers: dict, payload: bytes) -> None:
    headers = {k.lower(): v for k, v in headers.items()}
    assert status < 500 or status in DOCUMENTED_5XX, (status, payload[:500])
    assert headers.get("request-id", "").startswith("req_"), headers
    if status != 200:
        check_envelope(json.loads(payload), headers)
    elif headers.get("content-type", "").startswith("text/event-stream"):
        check_stream(payload.decode())
    elif path == "/v1/messages":
        check_message(json.loads(payload))
    elif path == "/v1/messages/count_tokens":
        assert list(json.loads(payload)) == ["input_tokens"] and json.loads(payload)["input_tokens"] >= 0
    elif path == "/v1/messages/render":
        data = json.loads(payload)
        assert isinstance(data["prompt"], str) and data["input_tokens"] >= 0
    elif path == "/v1/messages/batches":
        data = json.loads(payload)
        assert data["type"] == "message_batch" and data["id"].startswith("msgbatch_")


def check_envelope(data: dict, headers: dict) -> None:
    assert list(data) == ["type", "error", "request_id"], data
    assert data["type"] == "error" and list(data["error"]) == ["type", "message"], data
    assert isinstance(data["error"]["type"], str) and isinstance(data["error"]["message"], str)
    assert data["error"]["message"] and "Traceback" not in data["error"]["message"]
    assert data["request_id"] == headers["request-id"]


def check_usage(usage: dict) -> None:
    for field in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        assert isinstance(usage[field], int) and usage[field] >= 0, usage


def check_message(message: dict) -> None:
    assert message["type"] == "message" and message["role"] == "assistant" and message["id"].startswith("msg_")
    assert message["stop_reason"] in STOP_REASONS
    check_usage(message["usage"])
    for block in message["content"]:
        assert block["type"] in ("text", "thinking", "redacted_thinking", "tool_use"), block
        if block["type"] == "tool_use":
            assert isinstance(block["input"], dict)


def check_stream(text: str) -> None:
    """message_start first; blocks 0, 1, 2… each started, deltaed and stopped in order; message_delta then
    message_stop last (or an error event, which ends it); the deltas fold into a valid Message."""
    events = [(n, d) for n, d in parse_sse(text) if n != "ping"]
    assert events and events[0][0] == "message_start", events[:2]
    message = events[0][1]["message"]
    open_index, next_index, partial = None, 0, ""
    for name, data in events[1:]:
        if name == "error":
            assert (name, data) == events[-1]
            check_envelope(data, {"request-id": data["request_id"]})
            return
        if name == "content_block_start":
            assert open_index is None and data["index"] == next_index
            open_index, next_index = data["index"], next_index + 1
            message["content"].append(data["content_block"])
        elif name == "content_block_delta":
            assert data["index"] == open_index
            if data["delta"]["type"] == "input_json_delta":
                partial += data["delta"]["partial_json"]
        elif name == "content_block_stop":
            assert data["index"] == open_index
            if message["content"][open_index]["type"] == "tool_use":
                assert isinstance(json.loads(partial or "{}"), dict)
            open_index, partial = None, ""
        elif name == "message_delta":
            assert open_index is None
            message.update(data["delta"])
            message["usage"] = data["usage"]
    assert [n for n, _ in events[-2:]] == ["message_delta", "message_stop"], events[-3:]
    check_message(message)


def check_all_batches(get, deadline_s: float = 600) -> int:
    """Every batch the fuzz created ends, and each result line is a valid Message or a 4xx-kind error envelope
    (an `api_error` would be a crash inside a batch). `get(path)` -> (status, payload bytes). Returns the lines."""
    import time

    pending, after, lines = [], None, 0
    while True:
        status, payload = get("/v1/messages/batches?limit=1000" + (f"&after_id={after}" if after else ""))
        assert status == 200, payload[:300]
        page = json.loads(payload)
        pending += [batch["id"] for batch in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    deadline = time.monotonic() + deadline_s        # a hang guard only
    for batch_id in pending:
        while json.loads(get(f"/v1/messages/batches/{batch_id}")[1])["processing_status"] != "ended":
            assert time.monotonic() < deadline, f"batch {batch_id} never ended"
            time.sleep(0.1)
        status, payload = get(f"/v1/messages/batches/{batch_id}/results")
        assert status == 200, payload[:300]
        for line in payload.decode().splitlines():
            result = json.loads(line)["result"]
            assert result["type"] in ("succeeded", "errored", "canceled", "expired"), result
            if result["type"] == "succeeded":
                check_message(result["message"])
            elif result["type"] == "errored":
                error = result["error"]
                assert error["type"] == "error" and error["error"]["type"] != "api_error", error
                assert isinstance(error["error"]["message"], str) and error["error"]["message"]
            lines += 1
    return lines
