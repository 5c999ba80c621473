"""POST /v1/responses on the wire (Flask's test client over the scripted engine): the exact response object, the
typed SSE framing (`event:` lines, sequence numbers, each item's added … done), and OpenAI's error envelope."""
from __future__ import annotations

import pytest

from app.engine.events import (BlockEnd, Failed, Finished, StopReason, TextDelta, ThinkingDelta, ToolArgsDelta,
                               ToolCallStart, Usage)
from sse_frames import parse_sse

from api_helpers import MODEL
from test_openai_wire import openai_error

WEATHER = {"type": "function", "name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}


def create(client, **fields):
    return client.post("/v1/responses", json={"model": MODEL, "input": "hi", "max_output_tokens": 50, **fields})


def script_everything(engine):
    engine.script([ThinkingDelta("Hm."), BlockEnd(), TextDelta("Let me "), TextDelta("look."), BlockEnd(),
                   ToolCallStart("abc", "get_weather"), ToolArgsDelta('{"city": '), ToolArgsDelta('"Oslo"}'),
                   BlockEnd(), Finished(StopReason.TOOL_CALL, Usage(0, 12), stats={"thinking_tokens": 2})])


def test_the_response_object(client, engine):
    script_everything(engine)
    body = create(client, tools=[WEATHER], reasoning={"effort": "low"}, instructions="Be brief.").get_json()
    assert list(body)[:4] == ["id", "object", "created_at", "status"]
    assert (body["object"], body["status"], body["error"], body["incomplete_details"]) == \
        ("response", "completed", None, None)
    assert body["id"].startswith("resp_") and body["completed_at"] >= body["created_at"]
    assert (body["instructions"], body["max_output_tokens"], body["store"], body["previous_response_id"]) == \
        ("Be brief.", 50, False, None)
    assert body["tool_choice"] == "auto" and body["tools"] == [WEATHER] and body["text"] == {"format": {"type": "text"}}
    reasoning, message, call = body["output"]
    assert reasoning == {"id": reasoning["id"], "type": "reasoning", "summary": [],
                         "content": [{"type": "reasoning_text", "text": "Hm."}], "status": "completed"}
    assert message == {"id": message["id"], "type": "message", "role": "assistant", "status": "completed",
                       "content": [{"type": "output_text", "text": "Let me look.", "annotations": [],
                                    "logprobs": []}]}
    assert call == {"id": "fc_abc", "type": "function_call", "call_id": "call_abc", "name": "get_weather",
                    "arguments": '{"city": "Oslo"}', "status": "completed"}
    # The fake engine counts words: "<system> Be brief. <user> hi <assistant>"
    assert body["usage"] == {"input_tokens": 6, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                             "output_tokens": 12, "output_tokens_details": {"reasoning_tokens": 2},
                             "total_tokens": 18}
    assert body["thinkserve"]["thinking_tokens"] == 2


def test_the_stream(client, engine):
    script_everything(engine)
    response = create(client, tools=[WEATHER], stream=True)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    events = parse_sse(response.get_data(as_text=True))
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert [name for name, _ in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added", "response.reasoning_text.delta",
        "response.reasoning_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    created, completed = events[0][1]["response"], events[-1][1]["response"]
    assert created["status"] == "in_progress" and created["output"] == [] and created["usage"] is None
    assert completed["id"] == created["id"] and completed["status"] == "completed" and len(completed["output"]) == 3
    added = [data for name, data in events if name == "response.output_item.added"]
    assert [(a["output_index"], a["item"]["status"]) for a in added] == [(0, "in_progress"), (1, "in_progress"),
                                                                        (2, "in_progress")]
    assert added[1]["item"]["content"] == [] and added[2]["item"]["arguments"] == ""
    text_delta = next(data for name, data in events if name == "response.output_text.delta")
    assert text_delta == {"type": "response.output_text.delta", "item_id": added[1]["item"]["id"], "output_index": 1,
                          "content_index": 0, "delta": "Let me ", "logprobs": [],
                          "sequence_number": text_delta["sequence_number"]}
    args_done = next(data for name, data in events if name == "response.function_call_arguments.done")
    assert (args_done["item_id"], args_done["output_index"], args_done["arguments"]) == \
        ("fc_abc", 2, '{"city": "Oslo"}') and "content_index" not in args_done
    done = [data["item"] for name, data in events if name == "response.output_item.done"]
    assert done == completed["output"]


def test_a_failure_mid_stream_is_response_failed(client, engine):
    engine.script([TextDelta("a"), Failed("boom")])
    events = parse_sse(create(client, stream=True).get_data(as_text=True))
    name, data = events[-1]
    assert name == "response.failed" and data["response"]["status"] == "failed"
    assert data["response"]["error"] == {"code": "server_error", "message": "generation failed: boom"}
    assert data["response"]["output"][0]["status"] == "incomplete" and data["response"]["usage"] is None
    assert "response.completed" not in [name for name, _ in events]


def test_a_failed_generation_is_a_500(client, engine):
    engine.script([Failed("boom")])
    assert openai_error(create(client), 500, "server_error")["message"] == "generation failed: boom"


@pytest.mark.parametrize("method, path", [("GET", "/v1/responses/resp_1"), ("DELETE", "/v1/responses/resp_1"),
                                          ("GET", "/v1/responses/resp_1/input_items"),
                                          ("POST", "/v1/responses/resp_1/cancel")])
def test_nothing_is_stored_to_retrieve(client, method, path):
    error = openai_error(client.open(path, method=method), 404, "not_found_error")
    assert "stores no responses" in error["message"]


def test_bad_bodies_name_their_field(client):
    assert "not valid JSON" in openai_error(client.post("/v1/responses", data="{"), 400,
                                            "invalid_request_error")["message"]
    assert openai_error(create(client, input=5), 400, "invalid_request_error")["param"] == "input"
    error = openai_error(create(client, input=[{"role": "robot", "content": "x"}]), 400, "invalid_request_error")
    assert error["param"] == "input.0.role"
    error = openai_error(create(client, input=[{"role": "user", "content": [{"type": "video"}]}]), 400,
                         "invalid_request_error")
    assert error["param"] == "input.0.content.0.type"
    error = openai_error(create(client, tool_choice="sometimes"), 400, "invalid_request_error")
    assert error["param"] == "tool_choice"
    error = openai_error(create(client, tools=[{"type": "function", "name": "f", "parameters": {"type": "array"}}]),
                         400, "invalid_request_error")
    assert error["param"] == "tools.0.parameters"
    error = openai_error(create(client, input=[{"type": "function_call", "call_id": "c", "name": "f",
                                                "arguments": "[1]"}, {"role": "user", "content": "x"}]), 400,
                         "invalid_request_error")
    assert error["param"] == "input.0.arguments"


def test_engine_states_in_openai_s_envelope(client, engine):
    engine.queue_full = True
    response = create(client)
    assert openai_error(response, 529, "server_error")["code"] == "overloaded"
    engine.queue_full, engine.ready = False, False
    openai_error(create(client), 503, "server_error")


def test_auth_failures_are_openai_s(make_app):
    error = openai_error(create(make_app(api_key="k").test_client()), 401, "authentication_error")
    assert error["code"] == "invalid_api_key"
