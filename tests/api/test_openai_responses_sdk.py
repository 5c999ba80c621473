"""The official openai SDK (3.x) against POST /v1/responses under a real waitress server, over the scripted engine:
create, stream (the SDK's helper and its final response), parse with a pydantic model, function calls and their
outputs, reasoning effort, namespace and hosted tools, and errors in OpenAI's envelope. What the engine was asked
(the GenerationRequest) is checked too: the same request chat completions and the Anthropic side make."""
from __future__ import annotations

import openai
import pytest
from pydantic import BaseModel

from app.engine.events import (BlockEnd, Failed, Finished, StopReason, TextDelta, ThinkingDelta, ToolArgsDelta,
                               ToolCallStart, Usage)

from api_helpers import MODEL

WEATHER = {"type": "function", "name": "get_weather", "description": "weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture
def sdk(live):
    client = openai.OpenAI(base_url=live.url + "/v1", api_key="k", max_retries=0, timeout=20)
    yield client
    client.close()


def script_tool_call(engine, thinking=()):
    engine.script([*(ThinkingDelta(t) for t in thinking), *([BlockEnd()] if thinking else []),
                   ToolCallStart("1", "get_weather"), ToolArgsDelta('{"ci'), ToolArgsDelta('ty": "Paris"}'),
                   BlockEnd(), Finished(StopReason.TOOL_CALL, Usage(0, 9), stats={"thinking_tokens": len(thinking)})])


def test_create(sdk, live):
    response = sdk.responses.create(model="claude-local-7b", input="hi", max_output_tokens=50)
    assert response.id.startswith("resp_") and response.object == "response" and response.status == "completed"
    assert response.model == "claude-local-7b" and response.output_text == "Hello there"
    message, = response.output
    assert (message.type, message.role, message.status) == ("message", "assistant", "completed")
    assert message.id.startswith("msg_") and message.content[0].annotations == []
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (3, 2, 5)
    assert usage.input_tokens_details.cached_tokens == 0 and usage.output_tokens_details.reasoning_tokens == 0
    assert response._request_id.startswith("req_") and response.incomplete_details is None
    request = live.engine.requests[-1]
    assert request.max_new_tokens == 50 and request.messages == ({"role": "user", "content": "hi"},)


def test_items_instructions_and_settings_reach_the_engine(sdk, live):
    sdk.responses.create(model=MODEL, instructions="Be brief.", max_output_tokens=7, temperature=0, top_p=0.5,
                         input=[{"role": "developer", "content": "Say hi."},
                                {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
                                {"type": "message", "role": "assistant",
                                 "content": [{"type": "output_text", "text": "Hello."}]},
                                {"role": "user", "content": "again"}])
    request = live.engine.requests[-1]
    assert request.messages == ({"role": "system", "content": "Be brief.\n\nSay hi."},
                                {"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello."},
                                {"role": "user", "content": "again"})
    assert (request.sampling.temperature, request.sampling.top_p, request.max_new_tokens) == (0, 0.5, 7)
    assert request.thinking is None and request.output_schema is None and request.prefill == ""


def test_without_a_cap_the_answer_may_fill_the_window(sdk, live):
    sdk.responses.create(model=MODEL, input="hi")
    assert live.engine.requests[-1].max_new_tokens == 4096 - 3


def test_the_output_cap_makes_it_incomplete(sdk, live):
    live.engine.script([TextDelta("a"), Finished(StopReason.LENGTH, Usage(0, 1, cached_prompt_tokens=2))])
    response = sdk.responses.create(model=MODEL, input="hi", max_output_tokens=1)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].status == "incomplete" and response.output_text == "a"
    assert response.usage.input_tokens_details.cached_tokens == 2 and response.usage.input_tokens == 3


def test_stream_helper(sdk, live):
    live.engine.script([TextDelta("a"), TextDelta("b"), TextDelta("c")], delay_s=0.05)
    with sdk.responses.stream(model=MODEL, input="hi", max_output_tokens=5) as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [event.type for event in events]
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == ["a", "b", "c"]
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == "abc" and final.output_text == "abc" and final.usage.output_tokens == 3
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1


def test_stream_incomplete_ends_with_response_incomplete(sdk, live):
    live.engine.script([TextDelta("a"), Finished(StopReason.LENGTH, Usage(0, 1))])
    events = list(sdk.responses.create(model=MODEL, input="hi", max_output_tokens=1, stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


class City(BaseModel):
    city: str
    population: int


def test_parse_with_a_pydantic_model(sdk, live):
    live.engine.script([TextDelta('{"city": "Paris", '), TextDelta('"population": 2100000}')])
    response = sdk.responses.parse(model=MODEL, input="hi", max_output_tokens=50, text_format=City)
    assert response.output_parsed == City(city="Paris", population=2100000)
    schema = live.engine.requests[-1].output_schema
    assert schema["properties"].keys() == {"city", "population"} and schema["required"] == ["city", "population"]


def test_stream_parse_with_a_pydantic_model(sdk, live):
    live.engine.script([TextDelta('{"city": "Oslo", '), TextDelta('"population": 700000}')])
    with sdk.responses.stream(model=MODEL, input="hi", max_output_tokens=50, text_format=City) as stream:
        final = stream.get_final_response()
    assert final.output_parsed == City(city="Oslo", population=700000)


def test_json_object_and_text_formats(sdk, live):
    sdk.responses.create(model=MODEL, input="hi", max_output_tokens=5, text={"format": {"type": "json_object"}})
    assert live.engine.requests[-1].output_schema == {"type": "object"}
    sdk.responses.create(model=MODEL, input="hi", max_output_tokens=5, text={"format": {"type": "text"}})
    assert live.engine.requests[-1].output_schema is None


def test_a_schema_the_grammar_cannot_enforce_is_a_400(sdk):
    with pytest.raises(openai.BadRequestError) as error:
        sdk.responses.create(model=MODEL, input="hi", max_output_tokens=5, text={"format": {
            "type": "json_schema", "name": "x", "schema": {"type": "wobbly"}}})
    assert error.value.body["param"] == "text.format.schema"
    assert "cannot be enforced by the grammar" in error.value.message


@pytest.mark.parametrize("tool_choice, mode, name", [(None, "auto", None), ("auto", "auto", None),
                                                     ("required", "any", None), ("none", "none", None),
                                                     ({"type": "function", "name": "get_weather"}, "tool",
                                                      "get_weather")])
def test_tool_choice_reaches_the_grammar(sdk, live, tool_choice, mode, name):
    extra = {} if tool_choice is None else {"tool_choice": tool_choice}
    sdk.responses.create(model=MODEL, input="hi", max_output_tokens=5, tools=[WEATHER], **extra)
    request = live.engine.requests[-1]
    assert (request.tool_choice.mode, request.tool_choice.name, request.tool_choice.disable_parallel) == \
        (mode, name, False)
    assert request.tools[0]["function"]["name"] == "get_weather"


def test_parallel_tool_calls_false_allows_one_call(sdk, live):
    sdk.responses.create(model=MODEL, input="hi", max_output_tokens=5, tools=[WEATHER], tool_choice="required",
                         parallel_tool_calls=False)
    assert live.engine.requests[-1].tool_choice.disable_parallel is True


def test_a_function_call_and_its_output_round_trip(sdk, live):
    script_tool_call(live.engine)
    response = sdk.responses.create(model=MODEL, input="weather?", max_output_tokens=50, tools=[WEATHER])
    call, = response.output
    assert (call.type, call.name, call.arguments, call.status) == ("function_call", "get_weather",
                                                                   '{"city": "Paris"}', "completed")
    assert call.call_id == "call_1" and call.id == "fc_1" and response.status == "completed"
    sdk.responses.create(model=MODEL, max_output_tokens=50, tools=[WEATHER], input=[
        {"role": "user", "content": "weather?"}, *[item.model_dump(exclude_none=True) for item in response.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assistant, tool = live.engine.requests[-1].messages[1:]
    assert assistant["tool_calls"] == [{"id": "call_1", "type": "function",
                                        "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    assert tool == {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "sunny",
                    "is_error": False}


def test_streamed_function_call(sdk, live):
    script_tool_call(live.engine)
    with sdk.responses.stream(model=MODEL, input="weather?", max_output_tokens=50, tools=[WEATHER]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert deltas == ['{"ci', 'ty": "Paris"}'] and done.arguments == '{"city": "Paris"}'
    added = next(e for e in events if e.type == "response.output_item.added")
    assert added.item.type == "function_call" and added.item.arguments == "" and added.item.status == "in_progress"
    assert final.output[0].arguments == '{"city": "Paris"}' and final.output[0].call_id.startswith("call_")


def test_reasoning_effort_thinks_within_the_effort_budget(sdk, live):
    script_tool_call(live.engine, thinking=("Need ", "weather."))
    response = sdk.responses.create(model=MODEL, input="weather?", max_output_tokens=1000, tools=[WEATHER],
                                    reasoning={"effort": "low"})
    thinking = live.engine.requests[-1].thinking
    assert (thinking.budget_tokens, thinking.effort) == (500, "low")     # low is 1024, at most half the cap
    reasoning, call = response.output
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_") and reasoning.summary == []
    assert reasoning.content[0].type == "reasoning_text" and reasoning.content[0].text == "Need weather."
    assert call.type == "function_call" and response.usage.output_tokens_details.reasoning_tokens == 2
    assert response.reasoning.effort == "low" and response.model_extra["thinkserve"]["thinking_tokens"] == 2


def test_reasoning_streams_as_reasoning_text(sdk, live):
    live.engine.script([ThinkingDelta("Hm"), ThinkingDelta("m."), BlockEnd(), TextDelta("Hi")])
    with sdk.responses.stream(model=MODEL, input="hi", max_output_tokens=4000, reasoning={"effort": "high"}) as s:
        events = list(s)
        final = s.get_final_response()
    assert "".join(e.delta for e in events if e.type == "response.reasoning_text.delta") == "Hmm."
    assert next(e for e in events if e.type == "response.reasoning_text.done").text == "Hmm."
    assert [item.type for item in final.output] == ["reasoning", "message"] and final.output_text == "Hi"
    assert live.engine.requests[-1].thinking.budget_tokens == 2000


def test_earlier_reasoning_is_shown_within_a_tool_loop(sdk, live):
    sdk.responses.create(model=MODEL, max_output_tokens=50, tools=[WEATHER], reasoning={"effort": "none"}, input=[
        {"role": "user", "content": "weather?"},
        {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "Need weather."}],
         "encrypted_content": None},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "sunny"}]}])
    request = live.engine.requests[-1]
    assert request.messages[1]["reasoning_content"] == "Need weather." and request.messages[2]["content"] == "sunny"
    assert request.thinking is None


def test_namespace_tools_are_functions_and_hosted_tools_are_not_offered(sdk, live):
    live.engine.script([ToolCallStart("2", "spawn"), ToolArgsDelta("{}"), BlockEnd()])
    response = sdk.responses.create(model=MODEL, input="hi", max_output_tokens=50, tools=[
        WEATHER, {"type": "web_search"},
        {"type": "namespace", "name": "agents", "description": "sub-agents", "tools": [
            {"type": "function", "name": "spawn", "parameters": {"type": "object", "properties": {}}}]}])
    assert [t["function"]["name"] for t in live.engine.requests[-1].tools] == ["get_weather", "spawn"]
    call, = response.output
    assert (call.name, call.namespace) == ("spawn", "agents")


@pytest.mark.parametrize("fields, param, words", [
    ({"input": []}, "input", "at least one user message"),
    ({"temperature": 3}, "temperature", "less than or equal to 2"),
    ({"previous_response_id": "resp_1"}, "previous_response_id", "stores no responses"),
    ({"background": True}, "background", "not supported"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input.0.type", "not supported"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice.name",
     "not one of the tools"),
    ({"tools": [WEATHER, WEATHER]}, "tools", "must be unique"),
    ({"input": [{"type": "function_call_output", "call_id": "call_x", "output": "1"}]}, "input.0.call_id",
     "answers no function_call"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:,x"}]}]},
     "input.0.content.0", "cannot see images"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "input.0.content.0",
     "not supported"),
    ({"max_output_tokens": 5000}, "max_output_tokens", "exceed context limit"),
    ({"input": [{"role": "user", "content": 5}]}, "input.0.content", "valid"),
])
def test_bad_requests_are_400s_in_openai_s_envelope(sdk, fields, param, words):
    body = {"input": "hi", "max_output_tokens": 5, **fields}
    with pytest.raises(openai.BadRequestError) as error:
        sdk.responses.create(model=MODEL, input=body.pop("input"), extra_body=body)
    assert error.value.status_code == 400 and error.value.body["type"] == "invalid_request_error"
    assert error.value.body["param"] == param and words in error.value.message, error.value.body


def test_unknown_model_and_bad_key(sdk, live):
    with pytest.raises(openai.NotFoundError) as error:
        sdk.responses.create(model="gpt-5", input="hi", max_output_tokens=5)
    assert error.value.code == "model_not_found"
    with openai.OpenAI(base_url=live.url + "/v1", api_key="wrong", max_retries=0) as other:
        with pytest.raises(openai.AuthenticationError) as error:
            other.responses.create(model=MODEL, input="hi", max_output_tokens=5)
    assert error.value.code == "invalid_api_key"


def test_a_failure_before_output_is_a_500_and_mid_stream_is_response_failed(sdk, live):
    live.engine.script([Failed("out of memory")])
    with pytest.raises(openai.InternalServerError, match="generation failed: out of memory"):
        sdk.responses.create(model=MODEL, input="hi", max_output_tokens=5)
    live.engine.script([TextDelta("a"), Failed("out of memory")])
    events = list(sdk.responses.create(model=MODEL, input="hi", max_output_tokens=5, stream=True))
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.status == "failed"
    assert failed.response.error.code == "server_error" and "out of memory" in failed.response.error.message
