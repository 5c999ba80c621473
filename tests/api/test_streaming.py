"""POST /v1/messages with stream: true: the exact SSE event sequence the SDK accumulators need (named events,
message_start with usage, contiguous block indices, signature_delta last in a thinking block, input_json_delta
pieces, message_delta with usage, message_stop), pings, and that a stream folds into the non-stream Message."""
from __future__ import annotations

import json

import pytest

from app.engine.events import (BlockEnd, Finished, StopReason, TextDelta, ThinkingDelta, ToolArgsDelta,
                               ToolCallStart, Usage)

from api_helpers import accumulate, body, names, stream

USAGE_KEYS = ["input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"]


def test_text_stream_exact_sequence(client):
    events = stream(client, model="claude-sonnet-4-5")
    assert names(events) == ["message_start", "ping", "content_block_start", "content_block_delta",
                             "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_") and len(start["id"]) == 28
    assert {k: v for k, v in start.items() if k != "id"} == {
        "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [], "stop_reason": None,
        "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 0, "cache_creation_input_tokens": 0,
                                         "cache_read_input_tokens": 0}}
    assert [data for _, data in events[1:]] == [
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " there"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"input_tokens": 3, "output_tokens": 2, "cache_creation_input_tokens": 0,
                   "cache_read_input_tokens": 0}},
        {"type": "message_stop"}]


def test_stream_headers(client):
    response = client.post("/v1/messages", json=body(stream=True))
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["request-id"].startswith("req_")


@pytest.mark.parametrize("finished, stop_reason, stop_sequence", [
    (Finished(StopReason.LENGTH, Usage(0, 9)), "max_tokens", None),
    (Finished(StopReason.STOP_SEQUENCE, Usage(0, 9), stop_sequence="END"), "stop_sequence", "END"),
    (Finished(StopReason.TOOL_CALL, Usage(0, 9)), "tool_use", None),
])
def test_message_delta_carries_stop_reason_and_cumulative_usage(client, engine, finished, stop_reason,
                                                                 stop_sequence):
    engine.script([TextDelta("x"), finished])
    delta = dict(stream(client, stop_sequences=["END"]))["message_delta"]
    assert delta["delta"] == {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
    assert list(delta["usage"]) == USAGE_KEYS and delta["usage"]["output_tokens"] == 9


def test_thinking_then_text(app, client, engine):
    engine.script([ThinkingDelta("Let me "), ThinkingDelta("think."), BlockEnd(), TextDelta("42"),
                   Finished(StopReason.END, Usage(0, 6))])
    events = stream(client)
    assert [(n, d.get("index"), d.get("delta", d.get("content_block", {})).get("type")) for n, d in events[2:]] == [
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "signature_delta"),       # one, just before the thinking block's stop
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("message_delta", None, None),
        ("message_stop", None, None)]
    assert events[2][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert "".join(d["delta"].get("thinking", "") for _, d in events[3:5]) == "Let me think."
    signature = events[5][1]["delta"]["signature"]
    assert app.extensions["thinkserve"].signer.verify("Let me think.", signature)
    assert not app.extensions["thinkserve"].signer.verify("Let me think!", signature)


def test_thinking_without_block_end_is_closed_by_the_next_block(app, client, engine):
    engine.script([ThinkingDelta("hm"), TextDelta("ok")])
    events = stream(client)
    assert names(events)[2:8] == ["content_block_start", "content_block_delta", "content_block_delta",
                                  "content_block_stop", "content_block_start", "content_block_delta"]
    assert events[4][1]["delta"]["type"] == "signature_delta"


def test_omitted_thinking_sends_only_a_signature(make_app, engine):
    app = make_app(engine, min_thinking_budget=1)
    engine.script([ThinkingDelta("private "), ThinkingDelta("reasoning"), BlockEnd(), TextDelta("Answer")])
    events = stream(app.test_client(), max_tokens=64,
                    thinking={"type": "enabled", "budget_tokens": 16, "display": "omitted"})
    deltas = [d["delta"] for n, d in events if n == "content_block_delta" and d["index"] == 0]
    assert [d["type"] for d in deltas] == ["signature_delta"]
    assert app.extensions["thinkserve"].signer.verify("private reasoning", deltas[0]["signature"])
    assert "private" not in json.dumps([d for _, d in events])
    assert accumulate(events)["content"][0] == {"type": "thinking", "thinking": "",
                                                "signature": deltas[0]["signature"]}


def test_tool_call_stream(client, engine):
    pieces = ['{"city": ', '"Par', 'is", "units"', ': "C"}']
    engine.script([TextDelta("Checking."), BlockEnd(), ToolCallStart("9", "get_weather"),
                   *map(ToolArgsDelta, pieces), BlockEnd(), Finished(StopReason.TOOL_CALL, Usage(0, 20))])
    events = stream(client, tools=[{"name": "get_weather", "input_schema": {"type": "object"}}])
    assert events[5] == ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {}}})
    json_deltas = [d for n, d in events if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"]
    assert [(d["index"], d["delta"]["partial_json"]) for d in json_deltas] == [(1, p) for p in pieces]
    assert events[-4:-2] == [("content_block_delta", json_deltas[-1]),
                             ("content_block_stop", {"type": "content_block_stop", "index": 1})]
    assert dict(events)["message_delta"]["delta"]["stop_reason"] == "tool_use"
    assert accumulate(events)["content"][1]["input"] == {"city": "Paris", "units": "C"}


def test_block_indices_are_contiguous_and_never_overlap(client, engine):
    engine.script([ThinkingDelta("a"), BlockEnd(), TextDelta("b"), BlockEnd(), ToolCallStart("t1", "f"),
                   ToolArgsDelta("{}"), BlockEnd(), ToolCallStart("t2", "g"), BlockEnd(),
                   Finished(StopReason.TOOL_CALL, Usage(0, 5))])
    events = stream(client, tools=[{"name": "f", "input_schema": {"type": "object"}}, {"name": "g", "input_schema": {"type": "object"}}])
    open_index, started = None, []
    for name, data in events:
        if name == "content_block_start":
            assert open_index is None and data["index"] == len(started)
            open_index = data["index"]
            started.append(data["content_block"]["type"])
        elif name in ("content_block_delta", "content_block_stop"):
            assert data["index"] == open_index
            if name == "content_block_stop":
                open_index = None
    assert open_index is None and started == ["thinking", "text", "tool_use", "tool_use"]


def test_pings_fill_silence(make_app, engine):
    client = make_app(engine, ping_interval=0.3).test_client()
    engine.script([TextDelta("slow"), TextDelta(" words")], delay_s=0.6)
    events = stream(client)
    assert names(events)[:2] == ["message_start", "ping"]
    first_delta = names(events).index("content_block_delta")
    assert "ping" in names(events)[2:first_delta]
    assert "ping" in names(events)[first_delta + 1:names(events).index("content_block_stop")]
    assert [n for n in names(events) if n != "ping"][-2:] == ["message_delta", "message_stop"]


def test_no_extra_pings_when_events_flow(make_app, engine):
    client = make_app(engine, ping_interval=0.3).test_client()
    assert names(stream(client)).count("ping") == 1


@pytest.mark.parametrize("script", [
    [TextDelta("Hello"), TextDelta(" world")],
    [ThinkingDelta("Think "), ThinkingDelta("hard"), BlockEnd(), TextDelta("Done."),
     Finished(StopReason.STOP_SEQUENCE, Usage(0, 4), stop_sequence="##")],
    [TextDelta("Sure."), BlockEnd(), ToolCallStart("1", "f"), ToolArgsDelta('{"a": [1, '),
     ToolArgsDelta('{"b": null}]}'), BlockEnd(), ToolCallStart("2", "f"), BlockEnd(),
     Finished(StopReason.TOOL_CALL, Usage(0, 11))],
    [TextDelta("cut"), Finished(StopReason.LENGTH, Usage(0, 1))],
])
def test_stream_and_non_stream_hold_the_same_message(client, engine, script):
    engine.script(script)
    engine.script(script)
    fields = dict(stop_sequences=["##"], tools=[{"name": "f", "input_schema": {"type": "object"}}])
    plain = client.post("/v1/messages", json=body(**fields)).get_json()
    streamed = accumulate(stream(client, **fields))
    assert streamed.pop("id").startswith("msg_") and plain.pop("id").startswith("msg_")
    # The SDK's accumulator fills stop_details from message_delta; a server that leaves it out means null.
    assert streamed.pop("stop_details", None) is None
    assert streamed == plain


def test_stream_then_model_name_and_prefill(client, engine):
    engine.script([TextDelta(" Paris.")])
    events = stream(client, model="claude-haiku-4-5", messages=[
        {"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "It is"}])
    assert events[0][1]["message"]["model"] == "claude-haiku-4-5"
    assert accumulate(events)["content"] == [{"type": "text", "text": " Paris."}]
    assert engine.requests[-1].prefill == "It is"


def test_finished_stream_releases_the_generation(client, engine):
    stream(client)
    assert engine.handles[-1].cancelled.is_set()


@pytest.mark.parametrize("events_read", [0, 1, 2])
def test_a_stream_closed_before_its_first_engine_event_cancels_the_generation(client, engine, events_read):
    # The server closes the response when its client is gone (waitress does so on the first write to a dead
    # socket), which can be before or just after message_start and the first ping: the generation must stop
    # there too, not run on to max_tokens with no one reading.
    engine.script([TextDelta(str(i)) for i in range(50)], delay_s=0.1)
    response = client.post("/v1/messages", json=body(stream=True), buffered=False)
    chunks = iter(response.response)
    for _ in range(events_read):
        next(chunks)
    response.close()
    assert engine.handles[-1].cancelled.is_set()
