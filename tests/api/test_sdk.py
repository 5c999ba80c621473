"""The official anthropic SDK (2.12: Bearer auth, anthropic-version 2026-10-21) against the app under a real
waitress server, as `thinkserve serve` runs it: its stream accumulator, parsers and exception mapping."""
from __future__ import annotations

import time

import anthropic
import pytest

from app.engine.events import (BlockEnd, Failed, Finished, StopReason, TextDelta, ThinkingDelta, ToolArgsDelta,
                               ToolCallStart, Usage)

from api_helpers import MODEL

HI = [{"role": "user", "content": "hi"}]
TOOLS = [{"name": "get_weather", "description": "weather", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


def test_create(live):
    message = live.sdk.messages.create(model="claude-local-7b", max_tokens=50, messages=HI)
    assert message.id.startswith("msg_") and message.model == "claude-local-7b"
    assert [(b.type, b.text) for b in message.content] == [("text", "Hello there")]
    assert message.stop_reason == "end_turn" and message.usage.input_tokens == 3
    assert message.usage.output_tokens == 2
    assert message._request_id.startswith("req_")


def test_stream_helper_with_thinking_and_tool_use(live):
    live.engine.script([ThinkingDelta("Need "), ThinkingDelta("weather."), BlockEnd(), TextDelta("Checking."),
                        BlockEnd(), ToolCallStart("1", "get_weather"), ToolArgsDelta('{"ci'),
                        ToolArgsDelta('ty": "Par'), ToolArgsDelta('is"}'), BlockEnd(),
                        Finished(StopReason.TOOL_CALL, Usage(0, 17))])
    texts = []
    with live.sdk.messages.stream(model=MODEL, max_tokens=50, messages=HI, tools=TOOLS) as stream:
        for event in stream:
            if event.type == "text":
                texts.append(event.text)
        final = stream.get_final_message()
    assert texts == ["Checking."]
    thinking, text, tool = final.content
    assert (thinking.type, thinking.thinking) == ("thinking", "Need weather.")
    assert live.app.extensions["thinkserve"].signer.verify("Need weather.", thinking.signature)
    assert (text.type, text.text) == ("text", "Checking.")
    assert (tool.type, tool.id, tool.name, tool.input) == ("tool_use", "toolu_1", "get_weather", {"city": "Paris"})
    assert final.stop_reason == "tool_use" and final.usage.output_tokens == 17


def test_raw_stream_events(live):
    events = list(live.sdk.messages.create(model=MODEL, max_tokens=50, messages=HI, stream=True))
    assert [e.type for e in events] == ["message_start", "content_block_start", "content_block_delta",
                                        "content_block_delta", "content_block_stop", "message_delta",
                                        "message_stop"]                       # ping is dropped by the SDK


def test_stream_text_stream_over_slow_generation(live):
    live.engine.script([TextDelta("a"), TextDelta("b"), TextDelta("c")], delay_s=0.1)
    with live.sdk.messages.stream(model=MODEL, max_tokens=50, messages=HI) as stream:
        assert "".join(stream.text_stream) == "abc"


def test_count_tokens_matches_create(live):
    counted = live.sdk.messages.count_tokens(model=MODEL, messages=HI, system="Be brief.")
    created = live.sdk.messages.create(model=MODEL, max_tokens=5, messages=HI, system="Be brief.")
    assert counted.input_tokens == created.usage.input_tokens == 6


def test_models_list_and_retrieve(live):
    listed = list(live.sdk.models.list())              # auto-pagination must end
    assert [m.id for m in listed] == [MODEL] and listed[0].type == "model"
    assert listed[0].created_at.tzinfo is not None     # parsed from RFC 3339
    assert [m.id for m in live.sdk.models.list(limit=1000)] == [MODEL]
    assert live.sdk.models.retrieve(MODEL).id == MODEL
    assert live.sdk.models.retrieve("claude-opus-5-5").id == MODEL


def test_beta_calls(live):
    message = live.sdk.beta.messages.create(model=MODEL, max_tokens=5, messages=HI,
                                            betas=["context-management-2025-06-27", "no-such-beta"])
    assert message.content[0].text == "Hello there"
    assert live.sdk.beta.messages.count_tokens(model=MODEL, messages=HI, betas=["x"]).input_tokens == 3


@pytest.mark.parametrize("call, error, error_type", [
    (lambda sdk: sdk.models.retrieve("gpt-4o"), anthropic.NotFoundError, "not_found_error"),
    (lambda sdk: sdk.messages.create(model="gpt-4o", max_tokens=5, messages=HI), anthropic.NotFoundError,
     "not_found_error"),
    (lambda sdk: sdk.messages.create(model=MODEL, max_tokens=0, messages=HI), anthropic.BadRequestError,
     "invalid_request_error"),
    (lambda sdk: sdk.messages.create(model=MODEL, max_tokens=5, messages=HI, extra_body={"temperature": 2}),
     anthropic.BadRequestError, "invalid_request_error"),
    (lambda sdk: sdk.messages.count_tokens(model=MODEL, messages=[]), anthropic.BadRequestError,
     "invalid_request_error"),
    (lambda sdk: sdk.with_options(api_key="wrong").messages.create(model=MODEL, max_tokens=5, messages=HI),
     anthropic.AuthenticationError, "authentication_error"),
])
def test_errors_map_to_sdk_exceptions(live, call, error, error_type):
    with pytest.raises(error) as caught:
        call(live.sdk)
    assert caught.value.type == error_type
    assert caught.value.request_id.startswith("req_")
    assert caught.value.body["request_id"] == caught.value.request_id


def test_overloaded_and_loading_map_to_retryable_errors(live):
    live.engine.queue_full = True
    with pytest.raises(anthropic.OverloadedError):
        live.sdk.messages.create(model=MODEL, max_tokens=5, messages=HI)
    live.engine.queue_full, live.engine.ready = False, False
    with pytest.raises(anthropic.InternalServerError) as caught:
        live.sdk.messages.create(model=MODEL, max_tokens=5, messages=HI)
    assert caught.value.status_code == 503


def test_too_large_body(live):
    big = [{"role": "user", "content": "x" * 200_000}]
    with pytest.raises(anthropic.ContentTooLargeError) as caught:
        live.sdk.messages.create(model=MODEL, max_tokens=5, messages=big)
    assert caught.value.type == "request_too_large"
    assert live.sdk.messages.create(model=MODEL, max_tokens=5, messages=HI).content[0].text == "Hello there"


def test_error_mid_stream_raises_and_the_server_serves_on(live):
    live.engine.script([TextDelta("par"), Failed("device lost")])
    with pytest.raises(anthropic.APIStatusError) as caught:
        with live.sdk.messages.stream(model=MODEL, max_tokens=5, messages=HI) as stream:
            stream.get_final_message()
    assert caught.value.type == "api_error" and "device lost" in caught.value.message
    assert live.sdk.messages.create(model=MODEL, max_tokens=5, messages=HI).content[0].text == "Hello there"


def test_client_that_goes_away_cancels_its_generation(live):
    live.engine.script([TextDelta(str(i)) for i in range(50)], delay_s=0.1)
    with live.sdk.messages.stream(model=MODEL, max_tokens=50, messages=HI) as stream:
        for event in stream:
            if event.type == "text":
                break
    handle = live.engine.handles[-1]
    deadline = time.monotonic() + 5
    while not handle.cancelled.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    # cancel() is called as the HTTP thread stops reading the handle (the events generator's finally), so it
    # stopped before the end of the script: the generation was abandoned, not drained.
    assert handle.cancelled.is_set()
    assert handle._position < 50


def test_a_plain_request_whose_client_goes_away_is_cancelled_while_events_still_flow(live):
    # Events every 50 ms, never a quiet poll interval: the HTTP thread must still ask whether its client is there.
    live.engine.script([TextDelta(str(i)) for i in range(400)], delay_s=0.05)
    impatient = anthropic.Anthropic(base_url=live.url, api_key="k", max_retries=0, timeout=1.0)
    with pytest.raises(anthropic.APITimeoutError):
        impatient.messages.create(model=MODEL, max_tokens=400, messages=HI)
    impatient.close()
    handle = live.engine.handles[-1]
    deadline = time.monotonic() + 10           # a hang guard, not a speed target
    while not handle.cancelled.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert handle.cancelled.is_set() and handle._position < 400


def test_the_engine_call_ids_are_written_as_anthropic_ids_everywhere(live):
    """The engine's call ids carry no protocol's prefix: the tool_use block and the research figures that name a
    call (`tool_input_errors`) both read `toolu_` + it, streamed or not."""
    for _ in range(2):
        live.engine.script([ToolCallStart("7" * 24, "get_weather"), ToolArgsDelta("{}"), BlockEnd(),
                            Finished(StopReason.TOOL_CALL, Usage(0, 3), stats={"tool_input_errors": [
                                {"id": "7" * 24, "name": "get_weather", "errors": ["'city' is required"]}]})])
    created = live.sdk.messages.create(model=MODEL, max_tokens=50, messages=HI, tools=TOOLS)
    with live.sdk.messages.stream(model=MODEL, max_tokens=50, messages=HI, tools=TOOLS) as stream:
        figures = [event.model_extra["thinkserve"] for event in stream if event.type == "message_delta"]
    for message_id, extra in ((created.content[0].id, created.model_extra["thinkserve"]),
                              (stream.get_final_message().content[0].id, figures[0])):
        assert message_id == "toolu_" + "7" * 24
        assert extra["tool_input_errors"][0]["id"] == message_id
