"""Structured outputs end to end: the official SDK's `output_config` (and `messages.parse` with a pydantic model)
against the real server on the default model. SmolLM2-135M has never seen the schema; every valid answer is the
grammar's doing. Answers are checked with jsonschema directly, not with the server's own check."""
from __future__ import annotations

import json
from typing import Literal

from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field

from e2e_server import MODEL

CITY = {"type": "object", "properties": {
    "city": {"type": "string", "maxLength": 20},
    "country": {"enum": ["France", "Italy", "Spain"]},
    "landmarks": {"type": "array", "maxItems": 2, "items": {"type": "string", "maxLength": 20}}},
    "required": ["city", "country", "landmarks"], "additionalProperties": False}
ASK = [{"role": "user", "content": "Describe a European city as JSON."}]


def test_a_streamed_answer_after_adaptive_thinking_is_schema_json_and_effort_sets_the_budget(client):
    with client.messages.stream(model=MODEL, max_tokens=200, messages=ASK, thinking={"type": "adaptive"},
                                output_config={"format": {"type": "json_schema", "schema": CITY},
                                               "effort": "low"}) as stream:
        text, figures = "", None
        for event in stream:
            if event.type == "text":
                text += event.text
            elif event.type == "message_delta":
                figures = event.model_extra["thinkserve"]      # the SDK's final message does not keep it
        message = stream.get_final_message()
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[1].text == text and message.stop_reason == "end_turn"
    assert not list(Draft202012Validator(CITY).iter_errors(json.loads(text)))
    # effort low is 1024 tokens, at most half of max_tokens: 100
    assert figures["effort"] == "low" and figures["budget_tokens"] == 100 and figures["thinking_tokens"] <= 100
    assert figures["output_format"]["valid"] is True


class Landmark(BaseModel):
    name: str = Field(max_length=20)
    kind: Literal["museum", "church", "park"]


class City(BaseModel):
    city: str = Field(max_length=20)
    landmarks: list[Landmark] = Field(max_length=2)


def test_the_sdk_parses_the_answer_into_a_pydantic_model(client):
    # The SDK moves maxLength / maxItems into descriptions before sending, so nothing bounds the strings: greedy,
    # this model ends them; sampled at temperature 1 it may write one until max_tokens (see the README).
    message = client.messages.parse(model=MODEL, max_tokens=300, messages=ASK, output_format=City,
                                    extra_body={"temperature": 0})
    assert isinstance(message.parsed_output, City), message.content
    assert message.model_extra["thinkserve"]["output_format"]["valid"] is True


def test_the_deprecated_spelling_is_served_too(client):
    message = client.messages.create(model=MODEL, max_tokens=200, messages=ASK,
                                     extra_body={"output_format": {"type": "json_schema", "schema": CITY}})
    assert not list(Draft202012Validator(CITY).iter_errors(json.loads(message.content[0].text)))
