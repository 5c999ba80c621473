"""POST /v1/messages/render (a thinkserve extension): the prompt the model sees, with the same token count as
count_tokens, and the same validation and errors."""
from __future__ import annotations

import pytest

from app.engine.errors import PromptError, PromptTooLongError

from api_helpers import assert_error, body
from fake_engine import FakeEngine

WEATHER = {"name": "get_weather", "description": "weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}

BODIES = [
    {},
    dict(system="You are terse and exact."),
    dict(messages=[{"role": "user", "content": "a b c"}, {"role": "assistant", "content": "d e"},
                   {"role": "user", "content": "f"}]),
    dict(messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "The answer is"}]),
    dict(messages=[{"role": "user", "content": "q"}, {"role": "system", "content": "one two three"}]),
    dict(thinking={"type": "enabled", "budget_tokens": 16}),
    dict(tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"}),
]


def render(client, **fields):
    return client.post("/v1/messages/render", json=body(**fields))


@pytest.mark.parametrize("fields", BODIES)
def test_input_tokens_equal_count_tokens(client, fields):
    rendered = render(client, max_tokens=..., **fields)
    assert rendered.status_code == 200 and rendered.mimetype == "application/json"
    counted = client.post("/v1/messages/count_tokens", json=body(max_tokens=..., **fields)).get_json()
    assert list(rendered.get_json()) == ["prompt", "input_tokens", "images"]
    assert rendered.get_json()["input_tokens"] == counted["input_tokens"]


def test_prompt_is_the_engines_rendering(client):
    # FakeEngine renders "<role> content" lines and opens the assistant turn; a final assistant turn is the prefill.
    rendered = render(client, system="Be brief.", messages=[{"role": "user", "content": "hi"},
                                                           {"role": "assistant", "content": "Hello"}])
    assert rendered.get_json() == {"prompt": "<system> Be brief.\n<user> hi\n<assistant> Hello", "input_tokens": 7,
                                     "images": 0}


def test_a_full_messages_body_is_accepted_and_nothing_is_generated(client, engine):
    # The playground sends its /v1/messages body as it is: max_tokens, stream and sampling fields are ignored.
    rendered = render(client, stream=True, temperature=0.5, stop_sequences=["x"])
    assert rendered.status_code == 200
    assert rendered.get_json()["input_tokens"] == create_usage(client)
    assert len(engine.requests) == 1       # only the create_usage call generated


def create_usage(client) -> int:
    return client.post("/v1/messages", json=body()).get_json()["usage"]["input_tokens"]


def test_beta_query_is_accepted(client):
    assert client.post("/v1/messages/render?beta=true", json=body()).status_code == 200


@pytest.mark.parametrize("fields, message", [
    (dict(model=...), "model: Field required"),
    (dict(messages=[]), None),
    (dict(messages=[{"role": "user", "content": ""}]), None),
    (dict(tools=[WEATHER], tool_choice={"type": "tool", "name": "nope"}),
     "tool_choice.name: tool 'nope' is not one of the tools in the request"),
])
def test_invalid_bodies_are_400_like_count_tokens(client, fields, message):
    rendered = assert_error(render(client, **fields), 400, "invalid_request_error", message)
    counted = client.post("/v1/messages/count_tokens", json=body(**fields))
    assert rendered == assert_error(counted, 400, "invalid_request_error")


def test_body_that_is_not_json_is_400(client):
    response = client.post("/v1/messages/render", data="{nope", content_type="application/json")
    assert assert_error(response, 400, "invalid_request_error").startswith("request body is not valid JSON")


def test_unknown_model_is_404(client):
    assert "other-model" in assert_error(render(client, model="other-model"), 404, "not_found_error")


def test_alias_is_served(make_app):
    client = make_app(alias=("claude-*",)).test_client()
    assert client.post("/v1/messages/render", json=body(model="claude-opus-5-5")).status_code == 200


def test_loading_model_is_503(make_app):
    client = make_app(FakeEngine(ready=False)).test_client()
    assert_error(client.post("/v1/messages/render", json=body()), 503, "api_error")


class FailingTemplate(FakeEngine):
    def __init__(self, error: Exception):
        super().__init__()
        self.error = error

    def render_prompt(self, request):
        raise self.error


@pytest.mark.parametrize("error", [PromptError("roles must alternate"), PromptTooLongError("too long")])
def test_template_errors_are_400(make_app, error):
    client = make_app(FailingTemplate(error)).test_client()
    assert_error(client.post("/v1/messages/render", json=body()), 400, "invalid_request_error", str(error))


def test_get_is_405(client):
    assert_error(client.get("/v1/messages/render"), 405, "invalid_request_error")


@pytest.fixture
def keyed(make_app):
    return make_app(api_key="k").test_client()


@pytest.mark.parametrize("headers, message", [({}, "x-api-key header is required"),
                                              ({"x-api-key": "wrong"}, "invalid x-api-key")])
def test_needs_the_api_key(keyed, headers, message):
    assert_error(keyed.post("/v1/messages/render", json=body(), headers=headers), 401, "authentication_error",
                 message)


@pytest.mark.parametrize("headers", [{"x-api-key": "k"}, {"Authorization": "Bearer k"}])
def test_either_auth_header_works(keyed, headers):
    assert keyed.post("/v1/messages/render", json=body(), headers=headers).get_json()["prompt"].startswith("<user>")

