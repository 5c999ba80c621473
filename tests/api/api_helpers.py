"""Small helpers shared by the API tests: request bodies, the error envelope check, a strict SSE parser."""
from __future__ import annotations

import json

from sse_frames import parse_sse

MODEL = "fake-model"
USER = [{"role": "user", "content": "hi"}]


def body(**fields) -> dict:
    """A valid /v1/messages body; a field given as ... is removed."""
    result = {"model": MODEL, "max_tokens": 100, "messages": USER}
    for name, value in fields.items():
        if value is ...:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def assert_error(response, status: int, error_type: str, message: str | None = None) -> str:
    """The response is Anthropic's error envelope, exactly, with a matching request-id header; returns the message."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    data = json.loads(response.get_data(as_text=True))
    assert list(data) == ["type", "error", "request_id"]
    assert data["type"] == "error"
    assert list(data["error"]) == ["type", "message"]
    assert data["error"]["type"] == error_type
    assert isinstance(data["error"]["message"], str) and data["error"]["message"]
    assert data["request_id"].startswith("req_")
    assert response.headers["request-id"] == data["request_id"]
    if message is not None:
        assert data["error"]["message"] == message
    return data["error"]["message"]


def stream(client, **fields) -> list[tuple[str, dict]]:
    response = client.post("/v1/messages", json=body(stream=True, **fields))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/event-stream"
    return parse_sse(response.get_data(as_text=True))


def names(events) -> list[str]:
    return [name for name, _ in events]


def accumulate(events) -> dict:
    """Fold SSE events into a Message with the official SDK's own accumulator (anthropic.lib.streaming)."""
    from anthropic.lib.streaming._messages import accumulate_event

    snapshot, json_bufs = None, {}
    for name, data in events:
        if name in ("ping", "error"):
            continue
        snapshot = accumulate_event(event=data, current_snapshot=snapshot, json_bufs=json_bufs)
    return snapshot.to_dict()
