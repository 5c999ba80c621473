"""The official openai SDK (3.x) against POST /v1/chat/completions under a real waitress server, over the scripted
engine: create, both stream forms, parse with a pydantic model, tools and their results, reasoning, usage, errors.
What the engine was asked (the GenerationRequest) is checked too: the same request the Anthropic side makes."""
from __future__ import annotations

import base64

import openai
import pytest
from pydantic import BaseModel

from app.engine.events import (BlockEnd, Failed, Finished, StopReason, TextDelta, ThinkingDelta, ToolArgsDelta,
                               ToolCallStart, Usage)
from image_bytes import png_bytes

from api_helpers import MODEL

HI = [{"role": "user", "content": "hi"}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture
def sdk(live):
    client = openai.OpenAI(base_url=live.url + "/v1", api_key="k", max_retries=0, timeout=20)
    yield client
    client.close()


def script_tool_call(engine, arguments=('{"ci', 'ty": "Par', 'is"}'), thinking=()):
    engine.script([*(ThinkingDelta(t) for t in thinking), *([BlockEnd()] if thinking else []),
                   ToolCallStart("1", "get_weather"), *(ToolArgsDelta(a) for a in arguments), BlockEnd(),
                   Finished(StopReason.TOOL_CALL, Usage(0, 9), stats={"thinking_tokens": len(thinking)})])


def test_create(sdk, live):
    completion = sdk.chat.completions.create(model="claude-local-7b", messages=HI, max_tokens=50)
    assert completion.id.startswith("chatcmpl-") and completion.object == "chat.completion"
    assert completion.model == "claude-local-7b"
    choice, = completion.choices
    assert (choice.index, choice.message.role, choice.message.content) == (0, "assistant", "Hello there")
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (3, 2, 5)
    assert usage.prompt_tokens_details.cached_tokens == 0 and usage.completion_tokens_details.reasoning_tokens == 0
    assert completion._request_id.startswith("req_")
    assert live.engine.requests[-1].max_new_tokens == 50


def test_settings_reach_the_engine(sdk, live):
    sdk.chat.completions.create(model=MODEL, max_completion_tokens=7, temperature=0, top_p=0.5, seed=3,
                                stop=["END", ""], messages=[{"role": "system", "content": "Be brief."},
                                                            {"role": "developer", "content": "Say hi."}, *HI])
    request = live.engine.requests[-1]
    assert request.max_new_tokens == 7 and request.stop_sequences == ("END",)
    assert (request.sampling.temperature, request.sampling.top_p, request.sampling.seed) == (0, 0.5, 3)
    assert request.messages == ({"role": "system", "content": "Be brief.\n\nSay hi."},
                                {"role": "user", "content": "hi"})
    assert request.thinking is None and request.output_schema is None


def test_without_a_cap_the_answer_may_fill_the_window(sdk, live):
    sdk.chat.completions.create(model=MODEL, messages=HI)
    assert live.engine.requests[-1].max_new_tokens == 4096 - 3


def test_usage_counts_the_cached_prompt(sdk, live):
    live.engine.script([TextDelta("ok"), Finished(StopReason.END, Usage(0, 1, cached_prompt_tokens=2))])
    usage = sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=5).usage
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens, usage.completion_tokens) == (3, 2, 1)


def test_stream_with_usage(sdk, live):
    live.engine.script([TextDelta("a"), TextDelta("b"), Finished(StopReason.LENGTH, Usage(0, 2))], delay_s=0.05)
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=2, stream=True,
                                              stream_options={"include_usage": True}))
    assert {c.object for c in chunks} == {"chat.completion.chunk"} and len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "ab"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 2
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_usage_has_none(sdk):
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=5, stream=True))
    assert all(c.usage is None for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"


def test_stream_helper(sdk, live):
    live.engine.script([TextDelta("a"), TextDelta("b"), TextDelta("c")], delay_s=0.05)
    with sdk.chat.completions.stream(model=MODEL, messages=HI, max_tokens=5) as stream:
        texts = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    # The first chunk carries the role and content "", as OpenAI's own first chunk does.
    assert texts == ["", "a", "b", "c"] and final.choices[0].message.content == "abc"


class City(BaseModel):
    city: str
    population: int


def test_parse_with_a_pydantic_model(sdk, live):
    live.engine.script([TextDelta('{"city": "Paris", '), TextDelta('"population": 2100000}')])
    completion = sdk.chat.completions.parse(model=MODEL, messages=HI, max_tokens=50, response_format=City)
    assert completion.choices[0].message.parsed == City(city="Paris", population=2100000)
    schema = live.engine.requests[-1].output_schema
    assert schema["properties"].keys() == {"city", "population"} and schema["required"] == ["city", "population"]


def test_json_object_is_an_object_schema(sdk, live):
    sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=5, response_format={"type": "json_object"})
    assert live.engine.requests[-1].output_schema == {"type": "object"}


def test_a_schema_the_grammar_cannot_enforce_is_a_400(sdk):
    with pytest.raises(openai.BadRequestError) as error:
        sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=5, response_format={
            "type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "wobbly"}}})
    assert error.value.body["param"] == "response_format.json_schema.schema"
    assert "cannot be enforced by the grammar" in error.value.message


@pytest.mark.parametrize("tool_choice, mode, name", [(None, "auto", None), ("auto", "auto", None),
                                                     ("required", "any", None), ("none", "none", None),
                                                     ({"type": "function", "function": {"name": "get_weather"}},
                                                      "tool", "get_weather")])
def test_tool_choice_reaches_the_grammar(sdk, live, tool_choice, mode, name):
    extra = {} if tool_choice is None else {"tool_choice": tool_choice}
    sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=5, tools=[WEATHER], **extra)
    request = live.engine.requests[-1]
    assert (request.tool_choice.mode, request.tool_choice.name, request.tool_choice.disable_parallel) == \
        (mode, name, False)
    assert request.tools[0]["function"]["name"] == "get_weather"


def test_parallel_tool_calls_false_allows_one_call(sdk, live):
    sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=5, tools=[WEATHER], parallel_tool_calls=False,
                                tool_choice="required")
    assert live.engine.requests[-1].tool_choice.disable_parallel is True


def test_a_strict_function_the_grammar_cannot_enforce_is_a_400(sdk):
    loose = {"type": "function", "function": {"name": "tag", "strict": True, "parameters": {
        "type": "object", "properties": {"tags": {"type": "array", "uniqueItems": True}}}}}
    with pytest.raises(openai.BadRequestError) as error:
        sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=5, tools=[WEATHER, loose])
    assert error.value.body["param"] == "tools.1.function.parameters"


def test_a_tool_call_and_its_result_round_trip(sdk, live):
    script_tool_call(live.engine)
    completion = sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=50, tools=[WEATHER])
    choice = completion.choices[0]
    call, = choice.message.tool_calls
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert call.id == "call_1" and call.type == "function"
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city": "Paris"}')
    sdk.chat.completions.create(model=MODEL, max_tokens=50, tools=[WEATHER], messages=[
        *HI, choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"}])
    assistant, tool = live.engine.requests[-1].messages[1:]
    assert assistant["tool_calls"] == [{"id": call.id, "type": "function",
                                        "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    assert tool == {"role": "tool", "tool_call_id": call.id, "name": "get_weather", "content": "sunny",
                    "is_error": False}


def test_the_figures_name_calls_by_the_ids_the_client_saw(sdk, live):
    live.engine.script([ToolCallStart("7", "get_weather"), ToolArgsDelta("{}"), BlockEnd(),
                        Finished(StopReason.TOOL_CALL, Usage(0, 3), stats={"tool_input_errors": [
                            {"id": "7", "name": "get_weather", "errors": ["'city' is a required property"]}]})])
    choice = sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=50, tools=[WEATHER]).choices[0]
    assert choice.message.tool_calls[0].id == "call_7"
    assert choice.model_extra["thinkserve"]["tool_input_errors"][0]["id"] == "call_7"


def test_streamed_tool_call_with_the_helper(sdk, live):
    script_tool_call(live.engine)
    with sdk.chat.completions.stream(model=MODEL, messages=HI, max_tokens=50, tools=[WEATHER]) as stream:
        deltas = [event.arguments_delta for event in stream if event.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    # The call's first chunk has its id, name and arguments "", as OpenAI's does.
    assert deltas == ['', '{"ci', 'ty": "Par', 'is"}'] and call.function.arguments == '{"city": "Paris"}'
    assert call.id.startswith("call_") and final.choices[0].finish_reason == "tool_calls"


def test_reasoning_effort_thinks_within_the_effort_budget(sdk, live):
    script_tool_call(live.engine, thinking=("Need ", "weather."))
    completion = sdk.chat.completions.create(model=MODEL, messages=HI, max_completion_tokens=1000, tools=[WEATHER],
                                             reasoning_effort="low")
    thinking = live.engine.requests[-1].thinking
    assert (thinking.budget_tokens, thinking.effort) == (500, "low")     # low is 1024, at most half the cap
    message = completion.choices[0].message
    assert message.model_extra["reasoning_content"] == "Need weather."
    assert completion.usage.completion_tokens_details.reasoning_tokens == 2


def test_reasoning_streams_as_reasoning_content(sdk, live):
    live.engine.script([ThinkingDelta("Hm"), ThinkingDelta("m."), BlockEnd(), TextDelta("Hi")])
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=4000, stream=True,
                                              reasoning_effort="high"))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.model_extra.get("reasoning_content") or "" for d in deltas) == "Hmm."
    assert "".join(d.content or "" for d in deltas) == "Hi"
    assert live.engine.requests[-1].thinking.budget_tokens == 2000


def test_an_explicit_thinking_budget(sdk, live):
    sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=100, extra_body={"thinking_budget_tokens": 40})
    assert live.engine.requests[-1].thinking.budget_tokens == 40
    sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=100, reasoning_effort="none")
    assert live.engine.requests[-1].thinking is None


def test_n_gives_independent_choices(sdk, live):
    live.engine.script([TextDelta("one")])
    live.engine.script([TextDelta("two"), TextDelta(" more")])
    completion = sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=5, n=2)
    assert [(c.index, c.message.content) for c in completion.choices] == [(0, "one"), (1, "two more")]
    assert completion.usage.prompt_tokens == 3 and completion.usage.completion_tokens == 3


def test_n_streamed_interleaves_the_choices(sdk, live):
    live.engine.script([TextDelta("a"), TextDelta("b"), TextDelta("c")], delay_s=0.05)
    live.engine.script([TextDelta("x"), Finished(StopReason.LENGTH, Usage(0, 1))], delay_s=0.07)
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=5, n=2, stream=True,
                                              stream_options={"include_usage": True}))
    texts, finish = {0: "", 1: ""}, {}
    for chunk in chunks[:-1]:
        choice, = chunk.choices
        texts[choice.index] += choice.delta.content or ""
        if choice.finish_reason:
            finish[choice.index] = choice.finish_reason
    assert texts == {0: "abc", 1: "x"} and finish == {0: "stop", 1: "length"}
    assert chunks[-1].usage.completion_tokens == 3 + 1


def test_an_image_reaches_a_vision_model(sdk, live):
    live.engine.accepts_images = True
    url = "data:image/png;base64," + base64.b64encode(png_bytes((200, 10, 10))).decode()
    sdk.chat.completions.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]}])
    image, = live.engine.requests[-1].images
    assert image.media_type == "image/png" and image.image.size == (48, 40)


def test_models_list(sdk):
    model, = list(sdk.models.list())
    assert (model.id, model.object, model.owned_by) == (MODEL, "model", "thinkserve") and model.created > 0
    assert sdk.models.retrieve(MODEL).id == MODEL


@pytest.mark.parametrize("fields, param, words", [
    ({"messages": []}, "messages", "at least 1 item"),
    ({"temperature": 3}, "temperature", "less than or equal to 2"),
    ({"top_logprobs": 2}, "top_logprobs", "needs logprobs: true"),
    ({"n": 17}, "n", "less than or equal to 16"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "tool_choice.function.name", "not one of the tools"),
    ({"messages": [{"role": "tool", "tool_call_id": "call_x", "content": "1"}]}, "messages.0.tool_call_id",
     "answers no tool call"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,x"}}]}]},
     "messages.0.content.0", "cannot see images"),
    ({"max_tokens": 5000}, "max_tokens", "exceed context limit"),
])
def test_bad_requests_are_400s_in_openai_s_envelope(sdk, fields, param, words):
    body = {"model": MODEL, "messages": HI, "max_tokens": 5, **fields}
    with pytest.raises(openai.BadRequestError) as error:
        sdk.chat.completions.create(**{k: v for k, v in body.items() if k in ("model", "messages")},
                                    extra_body={k: v for k, v in body.items() if k not in ("model", "messages")})
    assert error.value.status_code == 400 and error.value.body["type"] == "invalid_request_error"
    assert error.value.body["param"] == param and words in error.value.message, error.value.body


def test_unknown_model_and_bad_key(sdk, live):
    with pytest.raises(openai.NotFoundError) as error:
        sdk.chat.completions.create(model="gpt-4o", messages=HI, max_tokens=5)
    assert error.value.code == "model_not_found"
    with openai.OpenAI(base_url=live.url + "/v1", api_key="wrong", max_retries=0) as other:
        with pytest.raises(openai.AuthenticationError) as error:
            other.chat.completions.create(model=MODEL, messages=HI, max_tokens=5)
    assert error.value.code == "invalid_api_key"


def test_a_failure_mid_stream_raises(sdk, live):
    live.engine.script([TextDelta("a"), Failed("out of memory")])
    with pytest.raises(openai.APIError, match="generation failed: out of memory"):
        list(sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=5, stream=True))
