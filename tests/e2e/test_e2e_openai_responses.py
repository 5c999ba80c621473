"""The official openai SDK's Responses API against the real server on the default model: created and streamed
(the SDK's helper), parsed into a pydantic model, a forced function call and its output, reasoning effort.
SmolLM2-135M has never seen these schemas; every valid answer or call is the grammar's doing."""
from __future__ import annotations

import json
from typing import Literal

import openai
import pytest
from pydantic import BaseModel

from e2e_server import API_KEY, MODEL

ASK = "What is the weather in Paris?"
WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30},
                                                           "unit": {"enum": ["C", "F"]}},
                          "required": ["city", "unit"], "additionalProperties": False}}


@pytest.fixture(scope="module")
def sdk(server):
    with openai.OpenAI(base_url=server.base_url + "/v1", api_key=API_KEY, max_retries=2) as client:
        yield client


def test_create_and_stream_agree_greedy(sdk):
    created = sdk.responses.create(model=MODEL, input="Say hello.", max_output_tokens=60, temperature=0)
    with sdk.responses.stream(model=MODEL, input="Say hello.", max_output_tokens=60, temperature=0) as stream:
        streamed = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert created.status == final.status == "completed" and created.output_text
    assert created.output_text == streamed == final.output_text
    assert created.usage.output_tokens == final.usage.output_tokens < 60
    assert created.usage.input_tokens == final.usage.input_tokens > 5


class Forecast(BaseModel):
    city: str
    sunny: bool
    unit: Literal["C", "F"]


def test_parse_a_forced_call_and_its_output(sdk):
    parsed = sdk.responses.parse(model=MODEL, input=ASK, max_output_tokens=200, temperature=0, text_format=Forecast)
    assert isinstance(parsed.output_parsed, Forecast), parsed.output_text
    response = sdk.responses.create(model=MODEL, input=ASK, max_output_tokens=100, tools=[WEATHER],
                                    tool_choice="required", parallel_tool_calls=False)
    call, = response.output
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id.startswith("call_")
    assert json.loads(call.arguments)["unit"] in ("C", "F")
    answer = sdk.responses.create(model=MODEL, max_output_tokens=30, tools=[WEATHER], tool_choice="none", input=[
        {"role": "user", "content": ASK}, call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"}])
    assert [item.type for item in answer.output] == ["message"] and answer.output_text


def test_reasoning_effort_gives_a_reasoning_item_within_its_budget(sdk):
    response = sdk.responses.create(model=MODEL, input=ASK, max_output_tokens=64, reasoning={"effort": "low"})
    assert response.output[0].type == "reasoning" and response.output[0].content[0].text
    # low is 1024 tokens, at most half of the cap: 32
    assert 0 < response.usage.output_tokens_details.reasoning_tokens <= 32
    assert response.model_extra["thinkserve"]["budget_tokens"] == 32
    with pytest.raises(openai.BadRequestError, match="stores no responses"):
        sdk.responses.create(model=MODEL, input="more", previous_response_id=response.id)
