"""`output_config` (format and effort), the deprecated `output_format`, and `strict` tools at the API layer: what the
engine is given, and the Anthropic-shaped 400s for what cannot be served. Generation itself is the engine's
(tests/engine/test_answer_format.py)."""
from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from app.config import Config, parse_effort_budgets
from app.engine.events import Finished, StopReason, TextDelta, Usage
from app.engine.request import ThinkingSettings

from api_helpers import assert_error, body
from fake_engine import FakeEngine

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
          "required": ["city"], "additionalProperties": False}
JSON_FORMAT = {"type": "json_schema", "schema": SCHEMA}
TOOL = {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}}}
ROUTES = ("/v1/messages", "/v1/messages/count_tokens", "/v1/messages/render")


@pytest.fixture
def engine():
    return FakeEngine(context_window=100_000)     # room for the largest effort budgets


@pytest.fixture
def app(make_app, engine):
    return make_app(engine, adaptive_thinking_budget=64, effort_budgets="high=300")


def nested(objects: int) -> dict:
    schema = {"type": "string"}
    for _ in range(objects):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def post(client, route: str, **fields):
    payload = body(**fields)
    if route != "/v1/messages":
        payload.pop("max_tokens")
    return client.post(route, json=payload)


@pytest.mark.parametrize("fields", [{"output_config": {"format": JSON_FORMAT}}, {"output_format": JSON_FORMAT}])
def test_both_spellings_give_the_engine_the_schema(client, engine, fields):
    assert client.post("/v1/messages", json=body(**fields)).status_code == 200
    assert engine.requests[-1].output_schema == SCHEMA


def test_without_a_format_the_answer_is_free(client, engine):
    assert client.post("/v1/messages", json=body(output_config={"effort": "low"})).status_code == 200
    assert engine.requests[-1].output_schema is None


@pytest.mark.parametrize("effort, max_tokens, expected", [
    ("low", 5000, 1024), ("medium", 5000, 2048), ("high", 5000, 300),      # high is overridden by the config
    ("xhigh", 20000, 8192), ("max", 40000, 16384),
    ("max", 1000, 500),                                                    # adaptive: at most half of max_tokens
])
def test_effort_sizes_adaptive_thinking_from_the_table(client, engine, effort, max_tokens, expected):
    response = client.post("/v1/messages", json=body(thinking={"type": "adaptive"}, max_tokens=max_tokens,
                                                     output_config={"effort": effort}))
    assert response.status_code == 200
    assert engine.requests[-1].thinking == ThinkingSettings(budget_tokens=expected, effort=effort)


@pytest.mark.parametrize("thinking, expected", [
    (None, None),                                         # effort alone does not switch thinking on
    ({"type": "disabled"}, None),
    ({"type": "enabled", "budget_tokens": 1500}, ThinkingSettings(budget_tokens=1500)),   # the explicit budget wins
    ({"type": "adaptive"}, ThinkingSettings(budget_tokens=64)),   # no effort: --adaptive-thinking-budget
])
def test_effort_leaves_other_thinking_settings_alone(client, engine, thinking, expected):
    config = {"effort": "max"} if thinking is None or thinking["type"] != "adaptive" else None
    response = client.post("/v1/messages", json=body(max_tokens=4000, thinking=thinking or ...,
                                                     output_config=config or ...))
    assert response.status_code == 200
    assert engine.requests[-1].thinking == expected


def test_the_effort_and_budget_used_reach_the_figures(client, engine):
    stats = {"thinking_tokens": 3, "budget_tokens": 1024, "budget_forced": False, "min_tokens": 0,
             "waits_inserted": 0, "effort": "low"}
    engine.script([TextDelta("{}"), Finished(StopReason.END, Usage(0, 4), stats=stats)])
    response = client.post("/v1/messages", json=body(thinking={"type": "adaptive"}, max_tokens=4000,
                                                     output_config={"effort": "low"}))
    assert response.get_json()["thinkserve"]["effort"] == "low"
    assert response.get_json()["thinkserve"]["budget_tokens"] == 1024


@pytest.mark.parametrize("fields, message", [
    ({"output_config": {"effort": "extreme"}},
     "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"),
    ({"output_config": {"format": {"type": "json_object"}}}, "output_config.format.type: Input should be 'json_schema'"),
    ({"output_config": {"format": {"type": "json_schema"}}}, "output_config.format.schema: Field required"),
    ({"output_format": {"type": "json_schema", "schema": "object"}},
     "output_format.schema: Input should be a valid dictionary"),
    ({"output_format": JSON_FORMAT, "output_config": {"format": JSON_FORMAT}},
     "output_format: use output_config.format alone (output_format is its deprecated spelling); the request sets "
     "both"),
])
@pytest.mark.parametrize("route", ROUTES)
def test_malformed_output_config_is_a_400(client, engine, route, fields, message):
    assert_error(post(client, route, **fields), 400, "invalid_request_error", message)
    assert engine.requests == []


@pytest.mark.parametrize("schema, problem", [
    ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "#: uniqueItems (not enforced by the grammar)"),
    ({"type": "object", "properties": {"a": {"not": {"type": "null"}}}},
     "#/properties/a: not (not enforced by the grammar)"),
    ({"type": "string", "pattern": "^(a)\\1$"}, "#: pattern with a backreference (cannot be compiled)"),
    ({"type": "wobbly"}, "the schema is invalid: "),
    (nested(70), "the schema nests deeper than 128 levels"),       # the grammar grows with the depth squared
])
@pytest.mark.parametrize("route", ROUTES)
def test_an_unenforceable_format_schema_is_a_400_before_generation(client, engine, route, schema, problem):
    message = assert_error(post(client, route, output_config={"format": {"type": "json_schema", "schema": schema}}),
                           400, "invalid_request_error")
    assert message.startswith("output_config.format.schema: this schema cannot be enforced by the grammar: " + problem)
    assert engine.requests == []


def test_a_format_with_a_prefill_is_a_400(client, engine):
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "{\"city\":"}]
    assert_error(client.post("/v1/messages", json=body(messages=messages, output_format=JSON_FORMAT)), 400,
                 "invalid_request_error", "messages: an assistant prefill cannot be combined with an output format; "
                                          "the conversation must end with a user message")


def test_strict_tools_are_accepted_and_reach_the_engine(client, engine):
    response = client.post("/v1/messages", json=body(tools=[{**TOOL, "strict": True}, {**TOOL, "name": "other"}]))
    assert response.status_code == 200
    functions = [tool["function"] for tool in engine.requests[-1].tools]
    assert [function.get("strict") for function in functions] == [True, None]


def test_a_strict_tool_the_grammar_cannot_enforce_is_a_400_and_a_plain_one_is_served(client, engine):
    loose = {"name": "tag", "input_schema": {"type": "object", "properties": {
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}}}}
    assert client.post("/v1/messages", json=body(tools=[TOOL, loose])).status_code == 200
    assert_error(client.post("/v1/messages", json=body(tools=[TOOL, {**loose, "strict": True}])), 400,
                 "invalid_request_error", "tools.1.input_schema: strict tool: this schema cannot be enforced by the "
                                          "grammar: #/properties/tags: uniqueItems (not enforced by the grammar)")
    assert_error(client.post("/v1/messages", json=body(tools=[{**TOOL, "strict": "yes"}])), 400,
                 "invalid_request_error", "tools.0.strict: Input should be a valid boolean")


def test_the_effort_table_is_configurable_and_checked():
    assert parse_effort_budgets("") == {"low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192, "max": 16384}
    assert parse_effort_budgets(" max = 9000, low=10")["max"] == 9000
    for bad in ("huge=3", "low=many", "low=0"):
        with pytest.raises(ValueError, match="--effort-budgets"):
            parse_effort_budgets(bad)
    with pytest.raises(ValueError, match="unknown level"):
        Config(effort_budgets="ultra=5").effort_budget_table()


class Weather(BaseModel):
    city: str
    unit: str | None = None


def test_the_sdk_sends_output_config_and_parses_the_answer(live):
    """anthropic 2.12 types output_config; `messages.parse(output_format=Model)` sends it as output_config.format
    and validates the JSON text into the model."""
    live.engine.script([TextDelta('{"city": "Paris", '), TextDelta('"unit": "C"}')])
    message = live.sdk.messages.create(model="fake-model", max_tokens=50, messages=[{"role": "user", "content": "hi"}],
                                       output_config={"format": JSON_FORMAT, "effort": "low"})
    assert json.loads(message.content[0].text) == {"city": "Paris", "unit": "C"}
    assert live.engine.requests[-1].output_schema == SCHEMA
    live.engine.script([TextDelta('{"city": "Oslo"}')])
    parsed = live.sdk.messages.parse(model="fake-model", max_tokens=50, output_format=Weather,
                                     messages=[{"role": "user", "content": "hi"}])
    assert parsed.parsed_output == Weather(city="Oslo")
    sent = live.engine.requests[-1].output_schema
    assert sent["type"] == "object" and set(sent["properties"]) == {"city", "unit"}


def test_the_sdk_streams_a_formatted_answer(live):
    live.engine.script([TextDelta('{"city": '), TextDelta('"Rome"}')])
    with live.sdk.messages.stream(model="fake-model", max_tokens=50, messages=[{"role": "user", "content": "hi"}],
                                  output_config={"format": JSON_FORMAT}) as stream:
        text = "".join(stream.text_stream)
    assert json.loads(text) == {"city": "Rome"}
