"""Every failure a client can see: Anthropic's envelope, the right status and type, a request-id header equal to
the body's request_id, and a message that starts with the path of the field at fault."""
from __future__ import annotations

import pytest

from app.engine.errors import PromptError, PromptTooLongError, ToolGrammarError
from app.engine.events import Failed, TextDelta

from api_helpers import MODEL, assert_error, body, parse_sse

CHAT = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
TOOL = {"name": "get_weather", "input_schema": {"type": "object"}}


@pytest.mark.parametrize("data, message", [
    ("not json", None),
    ("", None),
    ('{"model": ', None),
    ("[1, 2]", "request body must be a JSON object"),
    ('"text"', "request body must be a JSON object"),
    ("null", "request body must be a JSON object"),
])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_body_that_is_not_a_json_object(client, path, data, message):
    response = client.post(path, data=data, content_type="application/json")
    text = assert_error(response, 400, "invalid_request_error", message)
    if message is None:
        assert text.startswith("request body is not valid JSON")


@pytest.mark.parametrize("fields, path, fragment", [
    (dict(model=...), "model", "Field required"),
    (dict(model=7), "model", "valid string"),
    (dict(model=""), "model", "at least 1 character"),
    (dict(max_tokens=...), "max_tokens", "Field required"),
    (dict(max_tokens="100"), "max_tokens", "valid integer"),
    (dict(max_tokens=0), "max_tokens", "greater than or equal to 1"),
    (dict(max_tokens=-5), "max_tokens", "greater than or equal to 1"),
    (dict(max_tokens=1.5), "max_tokens", "valid integer"),
    (dict(messages=...), "messages", "Field required"),
    (dict(messages=[]), "messages", "at least 1 item"),
    (dict(messages={"role": "user", "content": "hi"}), "messages", "valid list"),
    (dict(messages="hi"), "messages", "valid list"),
    (dict(messages=["hi"]), "messages.0", "Input should be an object"),
    (dict(messages=CHAT + [{"role": "bot", "content": "x"}]), "messages.2.role", "'user', 'assistant' or 'system'"),
    (dict(messages=CHAT + [{"role": "user"}]), "messages.2.content", "Field required"),
    (dict(messages=CHAT + [{"role": "user", "content": 5}]), "messages.2.content", "valid list"),
    (dict(messages=CHAT + [{"role": "user", "content": [{"type": "video"}]}]),
     "messages.2.content.0.type", "Input tag 'video' is not a valid content block type"),
    (dict(messages=CHAT + [{"role": "user", "content": [{"type": "text", "text": "ok"}, {"text": "x"}]}]),
     "messages.2.content.1.type", "each content block needs a 'type'"),
    (dict(messages=[{"role": "user", "content": ""}]), "messages.0.content.0.text",
     "text content blocks must be non-empty"),
    (dict(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]), "messages.0.content.0.text",
     "text content blocks must be non-empty"),
    (dict(messages=[{"role": "user", "content": " \n\t"}]), "messages.0.content.0.text",
     "text content blocks must contain non-whitespace text"),
    (dict(messages=CHAT + [{"role": "user", "content": [{"type": "text", "text": "  "}]}]),
     "messages.2.content.0.text", "text content blocks must contain non-whitespace text"),
    (dict(messages=[{"role": "user", "content": [{"type": "text", "text": 3}]}]), "messages.0.content.0.text",
     "valid string"),
    (dict(messages=[{"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]}]),
     "messages.0.content.0.id", "Field required"),
    (dict(messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                                   "content": [{"type": "text", "text": ""}]}]}]),
     "messages.0.content.0.content.0.text", "text content blocks must be non-empty"),
    (dict(messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                                   "content": [{"type": "audio"}]}]}]),
     "messages.0.content.0.content.0.type", "Input tag 'audio' is not a valid content block type"),
    (dict(system=[{"type": "text", "text": ""}]), "system.0.text", "text content blocks must be non-empty"),
    (dict(system=5), "system", "valid string"),
    (dict(system=" \n "), "system", "non-whitespace text"),
    (dict(messages=[{"role": "user", "content": []}]), "messages.0", "user messages must have non-empty content"),
    (dict(tools=[{"input_schema": {"type": "object"}}]), "tools.0.name", "Field required"),
    (dict(tools=[TOOL, {"name": "f"}]), "tools.1.input_schema", "Field required"),
    (dict(tools=[{"name": "bad name", "input_schema": {}}]), "tools.0.name", "must match"),
    (dict(tools=[{"name": "f", "input_schema": {"type": "array"}}]), "tools.0.input_schema", "type 'object'"),
    (dict(tools=[TOOL, {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]), "tools.1",
     "tool type 'web_search_20250305' is not supported"),
    (dict(tools=[TOOL, TOOL]), "tools", "tool names must be unique: get_weather"),
    (dict(tools=[TOOL, TOOL]), "tools", "tool names must be unique: get_weather"),
    (dict(tools=[TOOL], tool_choice={"type": "tool", "name": "nope"}), "tool_choice.name", "'nope'"),
    (dict(tool_choice={"type": "sometimes"}), "tool_choice.type", "'auto', 'any', 'tool' or 'none'"),
    (dict(temperature=1.5), "temperature", "less than or equal to 1"),
    (dict(temperature=-0.1), "temperature", "greater than or equal to 0"),
    (dict(temperature="hot"), "temperature", "valid number"),
    (dict(top_k=0), "top_k", "greater than or equal to 1"),
    (dict(thinkserve={"logprobs": 21}), "thinkserve.logprobs", "less than or equal to 20"),
    (dict(thinkserve={"logprobs": True}), "thinkserve.logprobs", "valid integer"),
    (dict(stream="yes"), "stream", "valid boolean"),
    (dict(stop_sequences="END"), "stop_sequences", "valid list"),
    (dict(metadata="user"), "metadata", "valid dictionary"),
    (dict(thinking={"type": "sometimes"}), "thinking.type", "'enabled', 'disabled' or 'adaptive'"),
    (dict(thinking={"type": "enabled"}), "thinking.budget_tokens", "Field required"),
    (dict(thinking={"type": "enabled", "budget_tokens": 1023}, max_tokens=4000), "thinking.budget_tokens",
     "greater than or equal to 1024"),
])
def test_invalid_messages_request_names_the_field(client, engine, fields, path, fragment):
    message = assert_error(client.post("/v1/messages", json=body(**fields)), 400, "invalid_request_error")
    assert message.startswith(path + ": ")
    assert fragment in message
    assert engine.requests == []          # nothing reached the engine


@pytest.mark.parametrize("fields, message", [
    (dict(thinking={"type": "enabled", "budget_tokens": 2000}, max_tokens=2000),
     "`max_tokens` must be greater than `thinking.budget_tokens`"),
    (dict(thinking={"type": "enabled", "budget_tokens": 1024}, max_tokens=2000, tools=[TOOL],
          tool_choice={"type": "any"}), "Thinking may not be enabled when tool_choice forces tool use."),
    (dict(messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "The answer is "}]),
     "messages: final assistant content cannot end with trailing whitespace"),
])
def test_request_level_rules(client, fields, message):
    assert_error(client.post("/v1/messages", json=body(**fields)), 400, "invalid_request_error", message)


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_image_blocks_are_refused_by_a_text_model(client, path):
    block = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "look"}, block]}]
    message = assert_error(client.post(path, json=body(messages=messages)), 400, "invalid_request_error")
    assert message == ("messages.0.content.1: the served model fake-model cannot see images: it reads text only. "
                       "Send the image's content as text, or serve a vision-language model")


def test_count_tokens_validates_like_messages(client):
    message = assert_error(client.post("/v1/messages/count_tokens", json={"model": MODEL, "messages": [
        {"role": "user", "content": [{"type": "video"}]}]}), 400, "invalid_request_error")
    assert message.startswith("messages.0.content.0.type: ")
    assert_error(client.post("/v1/messages/count_tokens", json={"model": MODEL}), 400, "invalid_request_error",
                 "messages: Field required")


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_unknown_model_message_names_it(client, path):
    message = assert_error(client.post(path, json=body(model="gpt-4o")), 404, "not_found_error")
    assert message.startswith("model: gpt-4o")


@pytest.mark.parametrize("method, path", [
    ("get", "/nope"), ("post", "/v1/complete"), ("get", "/v1/skills"), ("get", "/v1/models/"),
    ("head", "/api/hello"),
])
def test_unknown_paths_are_json_404(client, method, path):
    response = getattr(client, method)(path)
    if method == "head":
        assert response.status_code == 404 and response.headers["request-id"].startswith("req_")
        return
    assert_error(response, 404, "not_found_error")
    assert b"<html" not in response.data.lower()


@pytest.mark.parametrize("method, path", [
    ("get", "/v1/messages"), ("delete", "/v1/messages"), ("get", "/v1/messages/count_tokens"),
    ("post", "/v1/models"), ("post", "/health"),
])
def test_wrong_method_is_405_in_the_envelope(client, method, path):
    message = assert_error(getattr(client, method)(path), 405, "invalid_request_error")
    assert message == f"{method.upper()} is not allowed on {path}"


def test_body_over_the_limit_is_413(make_app):
    client = make_app(max_request_bytes=200).test_client()
    small = client.post("/v1/messages", json=body())
    assert small.status_code == 200
    big = body(messages=[{"role": "user", "content": "x" * 300}])
    assert_error(client.post("/v1/messages", json=big), 413, "request_too_large")
    assert_error(client.post("/v1/messages/count_tokens", json=big), 413, "request_too_large")


def test_full_queue_is_529_with_retry_after(client, engine):
    engine.queue_full = True
    response = client.post("/v1/messages", json=body())
    assert_error(response, 529, "overloaded_error")
    assert float(response.headers["retry-after"]) > 0
    response = client.post("/v1/messages", json=body(stream=True))     # before the stream starts: plain JSON
    assert_error(response, 529, "overloaded_error")
    engine.queue_full = False
    assert client.post("/v1/messages", json=body()).status_code == 200


def test_loading_model_is_503_until_ready(client, engine):
    engine.ready = False
    health = client.get("/health")
    assert health.status_code == 503 and health.get_json() == {"status": "loading", "model": MODEL}
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        assert_error(client.post(path, json=body()), 503, "api_error")
    assert_error(client.post("/v1/messages", json=body(stream=True)), 503, "api_error")
    assert engine.requests == []
    engine.ready = True
    health = client.get("/health")
    assert health.status_code == 200
    assert health.get_json() == {"status": "ok", "model": MODEL, "engine": {"submitted": 0}}
    assert client.post("/v1/messages", json=body()).status_code == 200


def test_failed_load_is_reported(client, engine):
    engine.failure = "no such file: model.gguf"
    health = client.get("/health")
    assert health.status_code == 503
    assert health.get_json() == {"status": "error", "model": MODEL, "error": "no such file: model.gguf"}
    message = assert_error(client.post("/v1/messages", json=body()), 500, "api_error")
    assert "no such file: model.gguf" in message


def test_generation_failure_is_500_then_the_app_serves_on(client, engine):
    engine.script([TextDelta("partial"), Failed("CUDA out of memory")])
    message = assert_error(client.post("/v1/messages", json=body()), 500, "api_error")
    assert message == "generation failed: CUDA out of memory"
    assert client.post("/v1/messages", json=body()).get_json()["content"] == [{"type": "text", "text": "Hello there"}]


def test_generation_failure_mid_stream_is_an_error_event(client, engine):
    engine.script([TextDelta("partial"), Failed("CUDA out of memory")])
    response = client.post("/v1/messages", json=body(stream=True))
    assert response.status_code == 200
    events = parse_sse(response.get_data(as_text=True))
    assert [n for n, _ in events] == ["message_start", "ping", "content_block_start", "content_block_delta",
                                      "error"]                 # the error ends the stream: no message_stop
    assert events[-1][1] == {"type": "error", "error": {"type": "api_error",
                                                        "message": "generation failed: CUDA out of memory"},
                             "request_id": response.headers["request-id"]}
    assert engine.handles[-1].cancelled.is_set()
    follow_up = parse_sse(client.post("/v1/messages", json=body(stream=True)).get_data(as_text=True))
    assert follow_up[-1] == ("message_stop", {"type": "message_stop"})


def test_unexpected_exception_is_500_in_the_envelope(client, engine, monkeypatch):
    def explode(request):
        raise RuntimeError("boom")
    monkeypatch.setattr(engine, "prepare", explode)
    assert_error(client.post("/v1/messages", json=body()), 500, "api_error",
                 "internal server error: RuntimeError")


def test_every_response_has_a_fresh_request_id(client):
    ids = {client.post("/v1/messages", json=body()).headers["request-id"] for _ in range(3)}
    ids |= {client.get("/health").headers["request-id"], client.get("/v1/models").headers["request-id"]}
    assert len(ids) == 5 and all(i.startswith("req_") for i in ids)


@pytest.mark.parametrize("error", [PromptError("the model's chat template could not render these messages: x"),
                                   PromptTooLongError("the prompt is 9000 tokens; the window is 8192")])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_prompt_the_model_cannot_take_is_400(client, engine, monkeypatch, error, path):
    def refuse(request):
        raise error
    monkeypatch.setattr(engine, "prepare", refuse)
    assert_error(client.post(path, json=body()), 400, "invalid_request_error", str(error))


def test_tools_the_grammar_cannot_take_are_400_before_anything_streams(client, engine, monkeypatch):
    error = ToolGrammarError("the tool schemas could not be compiled into a grammar: bad pattern")

    def refuse(request, prepared=None):
        raise error
    monkeypatch.setattr(engine, "submit", refuse)
    tools = [{"name": "echo", "input_schema": {"type": "object"}}]
    assert_error(client.post("/v1/messages", json=body(tools=tools, stream=True)), 400, "invalid_request_error",
                 str(error))
