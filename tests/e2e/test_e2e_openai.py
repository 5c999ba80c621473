"""The official openai SDK against the real server on the default model: chat completions created, streamed (both
forms), parsed into a pydantic model, with forced and named tool calls and their results, reasoning, and errors.
SmolLM2-135M has never seen these schemas; every valid answer or call is the grammar's doing."""
from __future__ import annotations

import json
from typing import Literal

import openai
import pytest
from pydantic import BaseModel

from e2e_server import API_KEY, MODEL

ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
                                            "parameters": {"type": "object", "properties": {
                                                "city": {"type": "string", "maxLength": 30},
                                                "unit": {"enum": ["C", "F"]}},
                                                "required": ["city", "unit"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {"zone": {"type": "string", "maxLength": 30}}, "required": ["zone"]}}}


@pytest.fixture(scope="module")
def sdk(server):
    with openai.OpenAI(base_url=server.base_url + "/v1", api_key=API_KEY, max_retries=2) as client:
        yield client


def test_create_and_stream_agree_greedy(sdk):
    # The stream helper raises on finish_reason "length": a question this model answers briefly.
    hello = [{"role": "user", "content": "Say hello."}]
    created = sdk.chat.completions.create(model=MODEL, messages=hello, max_tokens=60, temperature=0, seed=1)
    with sdk.chat.completions.stream(model=MODEL, messages=hello, max_tokens=60, temperature=0,
                                     stream_options={"include_usage": True}) as stream:
        streamed = "".join(event.delta for event in stream if event.type == "content.delta")
        final = stream.get_final_completion()
    assert created.choices[0].message.content == streamed == final.choices[0].message.content
    assert created.choices[0].finish_reason == "stop"
    assert created.usage.completion_tokens == final.usage.completion_tokens < 60
    assert created.usage.prompt_tokens == final.usage.prompt_tokens > 10


class Forecast(BaseModel):
    city: str
    sunny: bool
    unit: Literal["C", "F"]


def test_parse_into_a_pydantic_model(sdk):
    completion = sdk.chat.completions.parse(model=MODEL, messages=ASK, max_tokens=200, temperature=0,
                                            response_format=Forecast)
    assert isinstance(completion.choices[0].message.parsed, Forecast), completion.choices[0].message.content


@pytest.mark.parametrize("tool_choice", ["required", {"type": "function", "function": {"name": "get_time"}}])
def test_a_forced_call_is_valid_and_its_result_goes_back(sdk, tool_choice):
    completion = sdk.chat.completions.create(model=MODEL, messages=ASK, max_tokens=100, tools=[WEATHER, TIME],
                                             tool_choice=tool_choice, parallel_tool_calls=False)
    message = completion.choices[0].message
    call, = message.tool_calls
    assert completion.choices[0].finish_reason == "tool_calls" and call.id.startswith("call_")
    arguments = json.loads(call.function.arguments)
    if isinstance(tool_choice, dict):
        assert call.function.name == "get_time" and isinstance(arguments["zone"], str)
    else:
        assert call.function.name in ("get_weather", "get_time")
    answer = sdk.chat.completions.create(model=MODEL, max_tokens=30, tools=[WEATHER, TIME], tool_choice="none",
                                         messages=[*ASK, message.model_dump(exclude_none=True),
                                                   {"role": "tool", "tool_call_id": call.id, "content": "sunny"}])
    assert answer.choices[0].message.tool_calls is None and answer.choices[0].message.content


def test_reasoning_effort_gives_reasoning_content_within_its_budget(sdk):
    completion = sdk.chat.completions.create(model=MODEL, messages=ASK, max_completion_tokens=64,
                                             reasoning_effort="low")
    message, usage = completion.choices[0].message, completion.usage
    reasoning = message.model_extra["reasoning_content"]
    assert isinstance(reasoning, str)
    # low is 1024 tokens, at most half of the cap: 32
    assert 0 < usage.completion_tokens_details.reasoning_tokens <= 32
    assert completion.choices[0].model_extra["thinkserve"]["budget_tokens"] == 32


def test_errors_and_models(sdk):
    with pytest.raises(openai.BadRequestError, match="exceed context limit"):
        sdk.chat.completions.create(model=MODEL, messages=ASK, max_tokens=100_000)
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="gpt-4o", messages=ASK, max_tokens=5)
    assert [m.id for m in sdk.models.list()] == [MODEL]


def test_two_streamed_choices_with_reasoning(sdk):
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=ASK, max_completion_tokens=40, n=2, stream=True,
                                              reasoning_effort="low", stream_options={"include_usage": True}))
    reasoning, finish = {0: "", 1: ""}, {}
    for chunk in chunks[:-1]:
        choice, = chunk.choices
        reasoning[choice.index] += choice.delta.model_extra.get("reasoning_content") or ""
        if choice.finish_reason:
            finish[choice.index] = choice.finish_reason
    assert set(finish) == {0, 1} and all(reasoning.values())
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and 0 < usage.completion_tokens_details.reasoning_tokens <= 2 * 20
    assert usage.completion_tokens <= 2 * 40


def test_logprobs_come_from_the_token_level_figures(sdk):
    """`logprobs` / `top_logprobs`: every answer token with its log-probability and alternatives, created and
    streamed (the stream helper gathers them from the last chunk)."""
    hello = [{"role": "user", "content": "Say hello."}]
    created = sdk.chat.completions.create(model=MODEL, messages=hello, max_tokens=60, temperature=0, logprobs=True,
                                          top_logprobs=2)
    tokens = created.choices[0].logprobs.content
    assert len(tokens) == created.usage.completion_tokens
    assert "".join(token.token for token in tokens).startswith(created.choices[0].message.content.strip()[:5])
    assert all(len(token.top_logprobs) == 2 and token.logprob <= 0 for token in tokens)
    assert tokens[0].top_logprobs[0].token == tokens[0].token                 # greedy: the likeliest, chosen
    with sdk.chat.completions.stream(model=MODEL, messages=hello, max_tokens=60, temperature=0, logprobs=True,
                                     top_logprobs=2) as stream:
        final = stream.get_final_completion()
    assert [t.token for t in final.choices[0].logprobs.content] == [t.token for t in tokens]
