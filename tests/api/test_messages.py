"""POST /v1/messages (non-streaming) and count_tokens: the Message shape, stop reasons, how an Anthropic request
becomes the engine's chat (asserted on engine.requests), token counts and the context-window check."""
from __future__ import annotations

import re

import pytest

from app.engine.events import (BlockEnd, Finished, StopReason, TextDelta, ThinkingDelta, ToolArgsDelta,
                               ToolCallStart, Usage)
from app.engine.request import Sampling, ThinkingSettings, ToolChoice

from api_helpers import MODEL, assert_error, body, stream
from fake_engine import FakeEngine


def create(client, **fields) -> dict:
    response = client.post("/v1/messages", json=body(**fields))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert re.fullmatch(r"req_\w+", response.headers["request-id"])
    return response.get_json()


@pytest.mark.parametrize("model", [MODEL, "claude-sonnet-4-5", "claude-opus-5-5-20261101", "claude-3-haiku"])
def test_message_shape(client, model):
    message = create(client, model=model)
    assert list(message) == ["id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"]
    assert re.fullmatch(r"msg_[A-Za-z0-9]{24}", message["id"])
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["model"] == model                       # echoes the name the client asked for
    assert message["content"] == [{"type": "text", "text": "Hello there"}]
    assert (message["stop_reason"], message["stop_sequence"]) == ("end_turn", None)
    assert message["usage"] == {"input_tokens": 3, "output_tokens": 2, "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 0}


def test_usage_splits_the_prompt_into_input_and_cache_and_adds_up_to_count_tokens(client, engine):
    engine.script([TextDelta("Hi"), Finished(StopReason.END, Usage(0, 1, cached_prompt_tokens=2))])
    usage = create(client)["usage"]
    counted = client.post("/v1/messages/count_tokens", json=body(max_tokens=...)).get_json()["input_tokens"]
    assert usage == {"input_tokens": counted - 2, "output_tokens": 1, "cache_creation_input_tokens": 0,
                     "cache_read_input_tokens": 2}
    marked = [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}]
    engine.script([TextDelta("Hi"), Finished(StopReason.END, Usage(0, 1, cached_prompt_tokens=2))])
    assert create(client, messages=marked)["usage"] == {"input_tokens": 0, "output_tokens": 1,
                                                         "cache_creation_input_tokens": counted - 2,
                                                         "cache_read_input_tokens": 2}


def test_a_stream_counts_the_whole_prompt_at_the_start_and_splits_it_at_the_end(client, engine):
    engine.script([TextDelta("Hi"), Finished(StopReason.END, Usage(0, 1, cached_prompt_tokens=2))])
    events = dict(stream(client))
    start, end = events["message_start"]["message"]["usage"], events["message_delta"]["usage"]
    assert start["input_tokens"] == end["input_tokens"] + end["cache_read_input_tokens"]
    assert start["cache_read_input_tokens"] == 0 and end["cache_read_input_tokens"] == 2


@pytest.mark.parametrize("fields, marked", [
    ({}, False),
    ({"cache_control": {"type": "ephemeral"}}, True),
    ({"system": [{"type": "text", "text": "Be kind.", "cache_control": {"type": "ephemeral"}}]}, True),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi",
                                                 "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}]}, True),
    ({"tools": [{"name": "t", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}]}, True),
    ({"messages": [{"role": "user", "content": "go"},
                   {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}]},
                   {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                       {"type": "text", "text": "ok", "cache_control": {"type": "ephemeral"}}]}]}],
      "tools": [{"name": "t", "input_schema": {"type": "object"}}]}, True),
])
def test_a_cache_control_breakpoint_anywhere_marks_the_request(client, engine, fields, marked):
    """Marked: the prompt tokens the request computed are reported as written to the cache, not as input."""
    usage = create(client, **fields)["usage"]
    assert (usage["input_tokens"], usage["cache_creation_input_tokens"] > 0) == ((0, True) if marked else (
        usage["input_tokens"], False)) and (usage["input_tokens"] > 0) is not marked


def test_ids_are_unique(client):
    assert len({create(client)["id"] for _ in range(5)}) == 5


@pytest.mark.parametrize("finished, stop_reason, stop_sequence", [
    (Finished(StopReason.END, Usage(0, 7)), "end_turn", None),
    (Finished(StopReason.LENGTH, Usage(0, 7)), "max_tokens", None),
    (Finished(StopReason.STOP_SEQUENCE, Usage(0, 7), stop_sequence="###"), "stop_sequence", "###"),
])
def test_stop_reasons(client, engine, finished, stop_reason, stop_sequence):
    engine.script([TextDelta("one two")])
    engine.script([TextDelta("one two"), finished])
    create(client)
    message = create(client, max_tokens=7, stop_sequences=["###"])
    assert (message["stop_reason"], message["stop_sequence"]) == (stop_reason, stop_sequence)
    assert message["usage"]["output_tokens"] == 7
    assert message["content"] == [{"type": "text", "text": "one two"}]


def test_tool_call_response_has_parsed_input(client, engine):
    engine.script([TextDelta("Let me check."), BlockEnd(), ToolCallStart("01", "get_weather"),
                   ToolArgsDelta('{"city": "Pa'), ToolArgsDelta('ris", "days": [1, '), ToolArgsDelta("2]}"),
                   BlockEnd(), Finished(StopReason.TOOL_CALL, Usage(0, 12))])
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    message = create(client, tools=tools)
    assert message["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris", "days": [1, 2]}}]
    assert message["stop_reason"] == "tool_use"


def test_tool_call_without_arguments_has_empty_input(client, engine):
    engine.script([ToolCallStart("02", "now"), BlockEnd(), Finished(StopReason.TOOL_CALL, Usage(0, 3))])
    message = create(client, tools=[{"name": "now", "input_schema": {"type": "object"}}])
    assert message["content"] == [{"type": "tool_use", "id": "toolu_02", "name": "now", "input": {}}]


def test_thinking_block_in_the_response_is_signed(app, client, engine):
    engine.script([ThinkingDelta("Let me "), ThinkingDelta("think."), BlockEnd(), TextDelta("42")])
    message = create(client)
    thinking, text = message["content"]
    assert list(thinking) == ["type", "thinking", "signature"] and thinking["thinking"] == "Let me think."
    assert app.extensions["thinkserve"].signer.verify("Let me think.", thinking["signature"])
    assert text == {"type": "text", "text": "42"}


def test_omitted_thinking_has_empty_text_and_a_signature(make_app, engine):
    app = make_app(engine, min_thinking_budget=1)
    engine.script([ThinkingDelta("secret plan"), BlockEnd(), TextDelta("done")])
    message = create(app.test_client(), max_tokens=50,
                     thinking={"type": "enabled", "budget_tokens": 10, "display": "omitted"})
    thinking = message["content"][0]
    assert thinking["type"] == "thinking" and thinking["thinking"] == ""
    assert app.extensions["thinkserve"].signer.verify("secret plan", thinking["signature"])
    assert engine.requests[-1].thinking == ThinkingSettings(budget_tokens=10, min_tokens=0)


# --- conversion: what the engine is asked to do -------------------------------------------------------------

def converted(client, engine, **fields):
    create(client, **fields)
    return engine.requests[-1]


@pytest.mark.parametrize("system, expected", [
    ("Be brief.", "Be brief."),
    ([{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind.", "cache_control": {
        "type": "ephemeral"}}], "Be brief.\n\nBe kind."),
])
def test_system_becomes_the_first_message(client, engine, system, expected):
    request = converted(client, engine, system=system)
    assert request.messages == ({"role": "system", "content": expected}, {"role": "user", "content": "hi"})


@pytest.mark.parametrize("header", ["x-anthropic-billing-header: cc_version=2.1.330.83a; cc_entrypoint=sdk-cli;",
                                    "x-anthropic-billing-header: cc_version=2.1.97.e41; cc_entrypoint=cli; cch=3f9a2;"])
def test_claude_codes_billing_header_block_is_not_prompt_text(client, engine, header):
    # It changes between sessions: kept, it would be a different first line each time and defeat the prefix cache.
    system = [{"type": "text", "text": header}, {"type": "text", "text": "You are a Claude agent."}]
    request = converted(client, engine, system=system)
    assert request.messages[0] == {"role": "system", "content": "You are a Claude agent."}


def test_billing_header_text_inside_a_longer_block_is_kept(client, engine):
    text = "x-anthropic-billing-header: explained\nThe header above is what the user asks about."
    request = converted(client, engine, system=[{"type": "text", "text": text}])
    assert request.messages[0] == {"role": "system", "content": text}


def test_no_system_means_no_system_message(client, engine):
    assert converted(client, engine).messages == ({"role": "user", "content": "hi"},)


@pytest.mark.parametrize("messages, system_text, turns", [
    ([{"role": "user", "content": "hi"}, {"role": "system", "content": "Env: linux"}],
     "Top.\n\nEnv: linux", [("user", "hi")]),
    ([{"role": "system", "content": [{"type": "text", "text": "S1"}]}, {"role": "user", "content": "a"},
      {"role": "assistant", "content": "b"}, {"role": "system", "content": "S2"}, {"role": "user", "content": "c"}],
     "Top.\n\nS1\n\nS2", [("user", "a"), ("assistant", "b"), ("user", "c")]),
    ([{"role": "user", "content": "a"}, {"role": "system", "content": "S"}, {"role": "user", "content": "b"}],
     "Top.\n\nS", [("user", "a\n\nb")]),
])
def test_system_role_messages_merge_into_the_system_prompt(client, engine, messages, system_text, turns):
    request = converted(client, engine, system="Top.", messages=messages)
    assert request.messages == ({"role": "system", "content": system_text},
                                *({"role": r, "content": c} for r, c in turns))
    assert request.prefill == ""


def test_consecutive_same_role_turns_merge(client, engine):
    request = converted(client, engine, messages=[
        {"role": "user", "content": "a"}, {"role": "user", "content": [{"type": "text", "text": "b"},
                                                                        {"type": "text", "text": "c"}]},
        {"role": "assistant", "content": "d"}, {"role": "assistant", "content": "e"},
        {"role": "user", "content": "f"}])
    assert request.messages == ({"role": "user", "content": "a\n\nb\n\nc"}, {"role": "assistant", "content": "d\n\ne"},
                                {"role": "user", "content": "f"})


def test_final_assistant_message_is_a_prefill(client, engine):
    engine.script([TextDelta(" 42.")])
    message = create(client, messages=[{"role": "user", "content": "Answer?"},
                                       {"role": "assistant", "content": "The answer is"}])
    request = engine.requests[-1]
    assert request.messages == ({"role": "user", "content": "Answer?"},)
    assert request.prefill == "The answer is"
    assert message["content"] == [{"type": "text", "text": " 42."}]      # the continuation only


def test_empty_final_assistant_message_is_no_prefill(client, engine):
    request = converted(client, engine, messages=[{"role": "user", "content": "q"},
                                                  {"role": "assistant", "content": []}])
    assert request.messages == ({"role": "user", "content": "q"},) and request.prefill == ""


def test_tool_use_and_tool_result_become_tool_calls_and_tool_messages(client, engine):
    request = converted(client, engine, tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
                        messages=[
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Checking."},
                                          {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Paris"}},
                                          {"type": "tool_use", "id": "toolu_2", "name": "get_weather",
                                           "input": {"city": "Lyon"}}]},
        {"role": "user", "content": [{"type": "text", "text": "thanks"},
                                     {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
                                      "content": [{"type": "text", "text": "timeout"}]},
                                     {"type": "tool_result", "tool_use_id": "toolu_2", "content": "18C"}]}])
    user, assistant, first, second, text = request.messages
    assert assistant == {"role": "assistant", "content": "Checking.", "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Lyon"}}}]}
    # tool results lead their user turn, in order, each naming its call and tool
    assert first == {"role": "tool", "tool_call_id": "toolu_1", "name": "get_weather", "content": "timeout",
                     "is_error": True}
    assert second == {"role": "tool", "tool_call_id": "toolu_2", "name": "get_weather", "content": "18C",
                      "is_error": False}
    assert text == {"role": "user", "content": "thanks"}
    assert request.tools == ({"type": "function", "function": {"name": "get_weather", "description": "",
                                                               "parameters": {"type": "object"}}},)


@pytest.mark.parametrize("choice, expected", [
    (None, ToolChoice()),
    ({"type": "auto"}, ToolChoice()),
    ({"type": "any", "disable_parallel_tool_use": True}, ToolChoice("any", disable_parallel=True)),
    ({"type": "tool", "name": "get_weather"}, ToolChoice("tool", name="get_weather")),
    ({"type": "none"}, ToolChoice("none")),
])
def test_tool_choice_reaches_the_engine(client, engine, choice, expected):
    fields = {"tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}
    if choice is not None:
        fields["tool_choice"] = choice
    assert converted(client, engine, **fields).tool_choice == expected


@pytest.mark.parametrize("fields, message", [
    (dict(messages=[{"role": "user", "content": "q"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f",
                                                       "input": {}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]}]),
     "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9. Each `tool_result` "
     "block must have a corresponding `tool_use` block in the previous message."),
    (dict(messages=[{"role": "user", "content": "q"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f",
                                                       "input": {}}]}]),
     "messages: the conversation ends with tool_use blocks; send their tool_result blocks in a final user message"),
    (dict(tool_choice={"type": "any"}), "tool_choice: 'any' needs tools: the request has none"),
])
def test_tool_turns_that_cannot_be_rendered_are_refused(client, fields, message):
    assert_error(client.post("/v1/messages", json=body(**fields)), 400, "invalid_request_error", message)


IMAGE = {"type": "image", "source": {"type": "url", "url": "http://x/y.png"}}
RESULT = {"type": "tool_result", "tool_use_id": "t", "content": "ok"}
CALLED = [{"role": "user", "content": "q"},             # the call that RESULT answers
          {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]


@pytest.mark.parametrize("messages, message", [
    ([*CALLED, {"role": "user", "content": [{"type": "text", "text": "see"}, IMAGE, RESULT]}],
     "messages.2.content.1: the served model fake-model cannot see images"),
    ([*CALLED, {"role": "user", "content": [RESULT, {"type": "tool_result", "tool_use_id": "t", "content": [
        {"type": "text", "text": "screenshot:"}, IMAGE]}]}],
     "messages.2.content.1.content.1: the served model fake-model cannot see images"),
    ([{"role": "user", "content": "hi"}, {"role": "system", "content": [{"type": "text", "text": "s"}, IMAGE]}],
     "messages.1.content.1: the served model fake-model cannot see images"),
])
def test_images_anywhere_are_refused_with_the_client_path(client, messages, message):
    error = assert_error(client.post("/v1/messages", json=body(messages=messages)), 400, "invalid_request_error")
    assert error.startswith(message)


def test_thinking_blocks_in_history_are_accepted_and_not_replayed(app, client, engine):
    signature = app.extensions["thinkserve"].signer.sign("hmm")
    request = converted(client, engine, messages=[
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": signature},
                                          {"type": "redacted_thinking", "data": "opaque"},
                                          {"type": "text", "text": "a"}]},
        {"role": "user", "content": "next"}])
    assert request.messages == ({"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                                {"role": "user", "content": "next"})


def test_generation_settings_pass_through(client, engine):
    request = converted(client, engine, max_tokens=33, stop_sequences=["END", "\n\n"], temperature=0.2, top_p=0.9,
                        top_k=40)
    assert (request.max_new_tokens, request.stop_sequences) == (33, ("END", "\n\n"))
    assert request.sampling == Sampling(temperature=0.2, top_p=0.9, top_k=40)
    assert converted(client, engine).sampling == Sampling(temperature=1.0)
    assert converted(client, engine).thinking is None


# --- count_tokens and the context window ---------------------------------------------------------------------

@pytest.mark.parametrize("fields", [
    {}, dict(system="You are terse and exact."),
    dict(messages=[{"role": "user", "content": "a b c"}, {"role": "assistant", "content": "d e"}]),
    dict(messages=[{"role": "user", "content": "q"}, {"role": "system", "content": "one two three"}]),
])
def test_count_tokens_matches_usage(client, fields):
    count = client.post("/v1/messages/count_tokens", json=body(max_tokens=..., **fields))
    assert count.status_code == 200 and count.mimetype == "application/json"
    assert count.get_json() == {"input_tokens": create(client, **fields)["usage"]["input_tokens"]}


def test_count_tokens_does_not_generate(client, engine):
    client.post("/v1/messages/count_tokens", json=body(max_tokens=...))
    assert engine.requests == []


@pytest.fixture
def small(make_app):
    return make_app(FakeEngine(context_window=50)).test_client()


def test_prompt_plus_max_tokens_over_the_window(small):
    words = " ".join(["w"] * 20)                           # "<user> w*20 <assistant>" = 22 tokens
    assert small.post("/v1/messages", json=body(max_tokens=28, messages=[
        {"role": "user", "content": words}])).status_code == 200
    response = small.post("/v1/messages", json=body(max_tokens=29, messages=[{"role": "user", "content": words}]))
    assert_error(response, 400, "invalid_request_error",
                 "input length and `max_tokens` exceed context limit: 22 + 29 > 50, "
                 "decrease input length or `max_tokens` and try again")


def test_with_the_window_beta_max_tokens_may_reach_past_the_window(make_app):
    """`anthropic-beta: model-context-window-exceeded-2025-08-26`: no 400 for prompt + max_tokens over the window;
    the output stops where the window is full, as `model_context_window_exceeded` (the engine's CONTEXT_WINDOW)."""
    engine = FakeEngine(context_window=50)
    small = make_app(engine).test_client()
    engine.script([TextDelta("cut"), Finished(StopReason.CONTEXT_WINDOW, Usage(0, 28))])
    messages = [{"role": "user", "content": " ".join(["w"] * 20)}]
    beta = {"anthropic-beta": "files-api-2025-04-14,model-context-window-exceeded-2025-08-26"}
    response = small.post("/v1/messages", json=body(max_tokens=4096, messages=messages), headers=beta)
    assert response.status_code == 200 and response.get_json()["stop_reason"] == "model_context_window_exceeded"
    assert engine.requests[-1].max_new_tokens == 4096
    assert_error(small.post("/v1/messages", json=body(max_tokens=4096, messages=messages)), 400,
                 "invalid_request_error", "input length and `max_tokens` exceed context limit: 22 + 4096 > 50, "
                 "decrease input length or `max_tokens` and try again")
    too_long = [{"role": "user", "content": " ".join(["w"] * 60)}]
    assert_error(small.post("/v1/messages", json=body(max_tokens=1, messages=too_long), headers=beta), 400,
                 "invalid_request_error", "prompt is too long: 62 tokens > 50 maximum")


def test_prompt_alone_over_the_window(small):
    messages = [{"role": "user", "content": " ".join(["w"] * 60)}]
    assert_error(small.post("/v1/messages", json=body(max_tokens=1, messages=messages)), 400,
                 "invalid_request_error", "prompt is too long: 62 tokens > 50 maximum")
    assert_error(small.post("/v1/messages", json=body(max_tokens=1, stream=True, messages=messages)), 400,
                 "invalid_request_error", "prompt is too long: 62 tokens > 50 maximum")
    assert small.post("/v1/messages/count_tokens", json=body(messages=messages)).get_json() == {"input_tokens": 62}
