"""`capabilities`, `max_input_tokens` and `max_tokens` of the model objects: every key the SDK's ModelCapabilities
has, parsed by the official SDK, true where the server serves it (checked by sending what each one claims), and
absent from the OpenAI clients' listing, which stays as it was."""
from __future__ import annotations

import pytest

from api_helpers import MODEL, body
from fake_engine import FakeEngine

KEYS = ["batch", "citations", "code_execution", "context_management", "effort", "image_input", "pdf_input",
        "server_tools", "structured_outputs", "thinking"]


def capabilities_of(client) -> dict:
    listed = client.get("/v1/models").get_json()["data"][0]
    assert client.get(f"/v1/models/{MODEL}").get_json() == listed
    return listed["capabilities"]


def test_every_key_is_there_with_a_boolean_supported(client):
    caps = capabilities_of(client)
    assert sorted(caps) == KEYS
    assert all(isinstance(caps[key]["supported"], bool) for key in KEYS)
    assert [key for key in KEYS if caps[key]["supported"]] == [
        "batch", "citations", "context_management", "effort", "pdf_input", "structured_outputs", "thinking"]


def test_the_sdk_parses_them(live):
    info = live.sdk.models.retrieve(MODEL)
    assert (info.max_input_tokens, info.max_tokens) == (4096, 4096)
    caps = info.capabilities
    assert caps.thinking.supported and caps.thinking.types.enabled.supported
    assert not caps.thinking.types.between_tools.supported
    assert caps.effort.max.supported and caps.effort.xhigh.supported
    assert not caps.server_tools.supported and not caps.server_tools.web_search.supported
    assert caps.context_management.clear_tool_uses_20250919.supported
    assert caps.image_input.supported is False
    assert [m.capabilities.image_input.supported for m in live.sdk.models.list()] == [False]


@pytest.mark.parametrize("accepts_images", [False, True])
def test_image_input_is_what_the_model_can_see(make_app, accepts_images):
    engine = FakeEngine(context_window=8192)
    engine.accepts_images = accepts_images
    client = make_app(engine).test_client()
    assert capabilities_of(client)["image_input"] == {"supported": accepts_images}
    listed = client.get("/v1/models").get_json()["data"][0]
    assert (listed["max_input_tokens"], listed["max_tokens"]) == (8192, 8192)


THINKING = {"enabled": {"type": "enabled", "budget_tokens": 1024}, "adaptive": {"type": "adaptive"},
            "disabled": {"type": "disabled"}, "between_tools": {"type": "between_tools"}}


def test_the_thinking_types_claimed_are_the_ones_accepted(client):
    for kind, support in capabilities_of(client)["thinking"]["types"].items():
        response = client.post("/v1/messages", json=body(max_tokens=2048, thinking=THINKING[kind]))
        assert (response.status_code == 200) == support["supported"], (kind, response.get_data(as_text=True))


def test_the_effort_levels_claimed_are_the_ones_accepted(client):
    effort = capabilities_of(client)["effort"]
    levels = [level for level in effort if level != "supported"]
    assert levels == ["low", "medium", "high", "xhigh", "max"]
    for level in levels:
        response = client.post("/v1/messages", json=body(output_config={"effort": level}))
        assert (response.status_code == 200) == effort[level]["supported"], level


def test_structured_outputs_claimed_are_enforced(client):
    assert capabilities_of(client)["structured_outputs"]["supported"]
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    response = client.post("/v1/messages", json=body(output_config={"format": {"type": "json_schema",
                                                                               "schema": schema}}))
    assert response.status_code == 200, response.get_data(as_text=True)


def test_batch_is_unsupported_where_the_batch_store_belongs_to_another_server(make_app):
    first = make_app()
    try:
        second = make_app()               # the same data dir: its batch endpoints answer 503
        assert capabilities_of(second.test_client())["batch"] == {"supported": False}
        assert capabilities_of(first.test_client())["batch"] == {"supported": True}
    finally:
        first.extensions["thinkserve.batches"].close()


def test_openai_clients_get_the_openai_shape_unchanged(client):
    headers = {"user-agent": "OpenAI/Python 3.63.0"}
    listed = client.get("/v1/models", headers=headers).get_json()
    assert list(listed) == ["object", "data", "has_more", "first_id", "last_id"]
    assert list(listed["data"][0]) == ["type", "id", "display_name", "created_at", "max_input_tokens", "max_tokens",
                                       "object", "created", "owned_by"]
    assert "capabilities" not in client.get(f"/v1/models/{MODEL}", headers=headers).get_json()
