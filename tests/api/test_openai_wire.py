"""POST /v1/chat/completions on the wire (Flask's test client over the scripted engine): OpenAI's error envelope for
every failure under its paths, Anthropic's everywhere else, and the exact SSE framing."""
from __future__ import annotations

import json

import pytest

from app.engine.events import Failed

from api_helpers import MODEL, assert_error

HI = [{"role": "user", "content": "hi"}]


def chat(client, **fields):
    return client.post("/v1/chat/completions", json={"model": MODEL, "messages": HI, "max_tokens": 5, **fields})


def openai_error(response, status: int, error_type: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert list(response.get_json()) == ["error"] and list(error) == ["message", "type", "param", "code"]
    assert error["type"] == error_type and error["message"]
    assert response.headers["x-request-id"] == response.headers["request-id"]
    return error


@pytest.mark.parametrize("method, path, status", [("GET", "/v1/chat/completions", 405),
                                                  ("POST", "/v1/chat/nothing", 404),
                                                  ("POST", "/v1/completions", 404),
                                                  ("GET", "/v1/responses", 405)])
def test_routing_errors_under_openai_paths_are_openai_s(client, method, path, status):
    error = openai_error(client.open(path, method=method), status,
                         "not_found_error" if status == 404 else "invalid_request_error")
    assert path in error["message"]


def test_other_paths_keep_anthropic_s_envelope(client):
    assert_error(client.get("/v1/nothing"), 404, "not_found_error")
    assert_error(client.post("/v1/messages", json={}), 400, "invalid_request_error")


def test_not_json_and_not_an_object(client):
    assert "not valid JSON" in openai_error(client.post("/v1/chat/completions", data="{"), 400,
                                            "invalid_request_error")["message"]
    openai_error(client.post("/v1/chat/completions", json=[1]), 400, "invalid_request_error")


def test_a_wrong_type_names_its_field(client):
    error = openai_error(chat(client, messages=[{"role": "user", "content": 5}]), 400, "invalid_request_error")
    assert error["param"] == "messages.0.content"
    error = openai_error(chat(client, messages=[{"role": "robot", "content": "x"}]), 400, "invalid_request_error")
    assert error["param"] == "messages.0.role"


def test_engine_states_in_openai_s_envelope(make_app, engine):
    client = make_app(engine).test_client()
    engine.queue_full = True
    response = chat(client)
    assert openai_error(response, 529, "server_error")["code"] == "overloaded"
    assert response.headers["retry-after"] == "1"
    engine.queue_full, engine.ready = False, False
    openai_error(chat(client), 503, "server_error")


def test_a_failed_generation_is_a_500(client, engine):
    engine.script([Failed("boom")])
    assert openai_error(chat(client), 500, "server_error")["message"] == "generation failed: boom"


def test_an_unexpected_exception_is_a_500_naming_only_its_type(client, engine, monkeypatch):
    monkeypatch.setattr(engine, "submit", lambda *a: (_ for _ in ()).throw(RuntimeError("secret")))
    assert openai_error(chat(client), 500, "server_error")["message"] == "internal server error: RuntimeError"


def test_auth_failures_are_openai_s(make_app):
    client = make_app(api_key="k").test_client()
    error = openai_error(chat(client), 401, "authentication_error")
    assert error["code"] == "invalid_api_key"
    assert chat(client, max_tokens=1).status_code == 401
    assert client.post("/v1/chat/completions", json={"model": MODEL, "messages": HI},
                       headers={"authorization": "Bearer k"}).status_code == 200


def test_a_body_over_the_limit_is_413(make_app):
    client = make_app(max_request_bytes=1000).test_client()
    openai_error(chat(client, messages=[{"role": "user", "content": "x" * 2000}]), 413, "invalid_request_error")


def test_sse_framing(client):
    response = chat(client, stream=True)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    frames = response.get_data(as_text=True).split("\n\n")
    assert frames[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(frame.removeprefix("data: ")) for frame in frames[:-2]]
    assert all(frame.startswith("data: {") for frame in frames[:-2])
    assert [c["choices"][0]["delta"] for c in chunks] == [{"role": "assistant", "content": ""}, {"content": "Hello"},
                                                          {"content": " there"}, {}]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    assert all("usage" not in c for c in chunks)


def test_a_failure_after_the_stream_started_is_an_error_line(client, engine):
    engine.script([Failed("boom")])
    frames = chat(client, stream=True).get_data(as_text=True).split("\n\n")
    assert json.loads(frames[1].removeprefix("data: "))["error"]["message"] == "generation failed: boom"
    assert frames[-2:] == ["data: [DONE]", ""]


def test_a_final_assistant_message_is_the_prefill(client, engine):
    assert chat(client, messages=[*HI, {"role": "assistant", "content": "Sure,"}]).status_code == 200
    assert engine.requests[-1].prefill == "Sure," and engine.requests[-1].messages == ({"role": "user",
                                                                                         "content": "hi"},)


def test_models_listing_for_each_sdk(client):
    openai_page = client.get("/v1/models", headers={"user-agent": "OpenAI/Python 3.63.0"}).get_json()
    assert openai_page["object"] == "list" and openai_page["data"][0]["object"] == "model"
    assert "object" not in client.get("/v1/models", headers={"anthropic-version": "2023-06-01"}).get_json()


@pytest.mark.parametrize("fields, param", [
    ({"tool_choice": "bogus"}, "tool_choice"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "messages.0.content.0.image_url.url"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
     "messages.0.content.0"),
    ({"messages": [{"role": "assistant", "content": "", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1"}}]}, *HI]},
     "messages.0.tool_calls.0.function.arguments"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages"),
    ({"function_call": "auto"}, "function_call"),
    ({"thinking_budget_tokens": 10, "max_tokens": 5}, "thinking_budget_tokens"),
])
def test_a_bad_field_is_named_in_param(client, fields, param):
    assert openai_error(chat(client, **fields), 400, "invalid_request_error")["param"] == param
