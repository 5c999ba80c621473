"""What real clients send: either auth header, both API versions, unknown betas, ?beta=true, and body fields this
server does not know (Claude Code sends many), all accepted."""
from __future__ import annotations

import json

import pytest

from api_helpers import MODEL, assert_error, body

ENDPOINTS = [("post", "/v1/messages", body()), ("post", "/v1/messages/count_tokens", body(max_tokens=...)),
             ("get", "/v1/models", None), ("get", f"/v1/models/{MODEL}", None)]


@pytest.fixture
def keyed(make_app, engine):
    return make_app(engine, api_key="k").test_client()


def call(client, method, path, payload, headers):
    return getattr(client, method)(path, json=payload, headers=headers)


@pytest.mark.parametrize("method, path, payload", ENDPOINTS)
@pytest.mark.parametrize("headers, message", [
    ({}, "x-api-key header is required"),
    ({"x-api-key": "wrong"}, "invalid x-api-key"),
    ({"x-api-key": ""}, "invalid x-api-key"),
    ({"Authorization": "Bearer wrong"}, "invalid x-api-key"),
    ({"Authorization": "Basic k"}, "x-api-key header is required"),
    ({"Authorization": "Bearer "}, "x-api-key header is required"),
    ({"x-api-key": "kk"}, "invalid x-api-key"),
])
def test_missing_or_wrong_key_is_401(keyed, engine, method, path, payload, headers, message):
    assert_error(call(keyed, method, path, payload, headers), 401, "authentication_error", message)
    assert engine.requests == []


@pytest.mark.parametrize("method, path, payload", ENDPOINTS)
@pytest.mark.parametrize("headers", [{"x-api-key": "k"}, {"Authorization": "Bearer k"},
                                     {"authorization": "bearer k"}])
def test_either_auth_header_is_accepted(keyed, method, path, payload, headers):
    assert call(keyed, method, path, payload, headers).status_code == 200


def test_auth_is_checked_before_anything_else(keyed):
    assert_error(keyed.post("/v1/messages", data="not json"), 401, "authentication_error")
    assert_error(keyed.post("/v1/messages", json=body(model="gpt-4o")), 401, "authentication_error")


def test_health_needs_no_key(keyed):
    response = keyed.get("/health")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"


def test_no_key_configured_means_open(client):
    assert client.post("/v1/messages", json=body(), headers={"x-api-key": "anything"}).status_code == 200


@pytest.mark.parametrize("version", ["2023-06-01", "2026-10-21", None, "1999-01-01"])
@pytest.mark.parametrize("method, path, payload", ENDPOINTS)
def test_any_anthropic_version_is_served(client, method, path, payload, version):
    headers = {"anthropic-version": version} if version else {}
    assert call(client, method, path, payload, headers).status_code == 200


@pytest.mark.parametrize("betas", [
    "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,"
    "per-turn-control-2026-07-01,thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20,effort-2025-11-24",
    "no-such-beta-2099-01-01", "a, b ,c", "",
])
@pytest.mark.parametrize("method, path, payload", ENDPOINTS)
def test_unknown_betas_are_ignored(client, method, path, payload, betas):
    response = call(client, method, path, payload, {"anthropic-beta": betas, "anthropic-version": "2023-06-01"})
    assert response.status_code == 200


@pytest.mark.parametrize("query", ["?beta=true", "?beta=false&foo=1"])
def test_query_strings_are_ignored(client, engine, query):
    message = client.post("/v1/messages" + query, json=body())
    assert message.status_code == 200 and message.get_json()["type"] == "message"
    count = client.post("/v1/messages/count_tokens" + query, json=body(max_tokens=...))
    assert count.status_code == 200 and list(count.get_json()) == ["input_tokens"]
    events = client.post("/v1/messages" + query, json=body(stream=True))
    assert events.mimetype == "text/event-stream"


CLAUDE_CODE_FIELDS = dict(
    context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    output_config={"effort": "medium"},
    cache_control={"type": "ephemeral"},
    service_tier="auto",
    container="container_1",
    metadata={"user_id": json.dumps({"device_id": "ab" * 32, "account_uuid": "", "session_id": "5e5e"})},
    safeguards=[{"type": "dangerous_tool_use", "classifier_context": {"v": 1}}],
    speed="standard", inference_geo="global", mcp_servers=[], diagnostics={"previous_message_id": None},
    thinking={"type": "adaptive", "display": "omitted"},
    system=[{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330;"},
            {"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
    tools=[{"name": "Bash", "description": "run", "defer_loading": True, "strict": True,
            "cache_control": {"type": "ephemeral"}, "eager_input_streaming": None,
            "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                             "properties": {"command": {"type": "string"}}, "additionalProperties": False}}],
    messages=[{"role": "user", "content": [
                  {"type": "text", "text": "<system-reminder>r</system-reminder>", "cache_control": {"type": "ephemeral"}},
                  {"type": "text", "text": "Say hello", "citations": None}]},
              {"role": "system", "content": [{"type": "text", "text": "# Environment", "cache_control": {
                  "type": "ephemeral"}}]}],
)


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_claude_code_body_is_accepted(client, path):
    headers = {"anthropic-beta": "claude-code-20250219,context-management-2025-06-27", "x-app": "cli",
               "anthropic-dangerous-direct-browser-access": "true", "X-Claude-Code-Session-Id": "s"}
    response = client.post(path + "?beta=true", json=body(**CLAUDE_CODE_FIELDS), headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize("field, value", [(k, v) for k, v in CLAUDE_CODE_FIELDS.items()
                                          if k not in ("messages", "system", "tools", "thinking")])
def test_each_unknown_top_level_field_alone_is_accepted(client, field, value):
    assert client.post("/v1/messages", json=body(**{field: value})).status_code == 200


def test_stream_is_decided_by_the_body_not_accept(client):
    streamed = client.post("/v1/messages", json=body(stream=True), headers={"Accept": "application/json"})
    assert streamed.mimetype == "text/event-stream"
    plain = client.post("/v1/messages", json=body(stream=False), headers={"Accept": "text/event-stream"})
    assert plain.mimetype == "application/json" and plain.get_json()["type"] == "message"


def test_content_type_is_not_required(client):
    response = client.post("/v1/messages", data=json.dumps(body()), content_type="text/plain")
    assert response.status_code == 200 and response.get_json()["type"] == "message"
