"""The `thinking` field: validation, the settings the engine gets, signatures on the way out and back in, and the
research figures reported as the `thinkserve` extension."""
from __future__ import annotations

import pytest

from app.engine.events import BlockEnd, Finished, StopReason, TextDelta, ThinkingDelta, Usage
from app.engine.request import ThinkingSettings

from api_helpers import accumulate, assert_error, body, stream

TOOL = {"name": "get_time", "input_schema": {"type": "object"}}
STATS = {"thinking_tokens": 7, "budget_tokens": 8, "budget_forced": True, "min_tokens": 0, "waits_inserted": 0}


@pytest.fixture
def app(make_app, engine):
    return make_app(engine, min_thinking_budget=4, adaptive_thinking_budget=64)


def enabled(budget=8, **extra):
    return {"type": "enabled", "budget_tokens": budget, **extra}


def script_thinking(engine, thinking="Let me think.", answer="42"):
    engine.script([ThinkingDelta(thinking), BlockEnd(), TextDelta(answer),
                   Finished(StopReason.END, Usage(0, 9), stats=STATS)])


@pytest.mark.parametrize("thinking, max_tokens, expected", [
    (enabled(8), 100, ThinkingSettings(budget_tokens=8)),
    (enabled(8, min_tokens=5), 100, ThinkingSettings(budget_tokens=8, min_tokens=5)),
    (enabled(8, prefill="So"), 100, ThinkingSettings(budget_tokens=8, prefill="So")),
    (enabled(8, prefill="", prefill_closed=True), 100, ThinkingSettings(budget_tokens=8, prefill_closed=True)),
    ({"type": "adaptive"}, 200, ThinkingSettings(budget_tokens=64)),
    ({"type": "adaptive", "display": "omitted"}, 20, ThinkingSettings(budget_tokens=10)),   # half of max_tokens
    ({"type": "disabled"}, 100, None),
])
def test_engine_gets_the_budget(client, engine, thinking, max_tokens, expected):
    assert client.post("/v1/messages", json=body(thinking=thinking, max_tokens=max_tokens)).status_code == 200
    assert engine.requests[-1].thinking == expected


@pytest.mark.parametrize("fields, message", [
    (dict(thinking={"type": "enabled"}), "thinking.budget_tokens: Field required"),
    (dict(thinking=enabled("8")), "thinking.budget_tokens: Input should be a valid integer"),
    (dict(thinking=enabled(3)), "thinking.budget_tokens: Input should be greater than or equal to 4"),
    (dict(thinking=enabled(100), max_tokens=100), "`max_tokens` must be greater than `thinking.budget_tokens`"),
    (dict(thinking=enabled(8, min_tokens=9)), "thinking.min_tokens: 9 is more than the thinking budget (8)"),
    (dict(thinking={"type": "sometimes"}), "thinking.type"),
    (dict(thinking=enabled(8), tools=[TOOL], tool_choice={"type": "any"}), "tool_choice forces tool use"),
    (dict(thinking=enabled(8), tools=[TOOL], tool_choice={"type": "tool", "name": "get_time"}),
     "tool_choice forces tool use"),
    (dict(thinking=enabled(8), messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "A"}]),
     "an assistant prefill cannot be combined with thinking"),
])
def test_invalid_thinking_is_400(client, fields, message):
    assert message in assert_error(client.post("/v1/messages", json=body(**fields)), 400, "invalid_request_error")


def test_thinking_with_auto_or_none_tool_choice_is_accepted(client):
    for choice in ({"type": "auto"}, {"type": "none"}):
        response = client.post("/v1/messages", json=body(thinking=enabled(8), tools=[TOOL], tool_choice=choice))
        assert response.status_code == 200


def test_thinking_block_comes_first_signed_with_the_extension_figures(app, client, engine):
    script_thinking(engine)
    message = client.post("/v1/messages", json=body(thinking=enabled(8))).get_json()
    thinking, text = message["content"]
    assert (thinking["type"], thinking["thinking"], text) == ("thinking", "Let me think.",
                                                              {"type": "text", "text": "42"})
    assert app.extensions["thinkserve"].signer.verify("Let me think.", thinking["signature"])
    assert message["thinkserve"] == STATS


def test_streamed_thinking_ends_with_the_figures_in_message_delta(client, engine):
    script_thinking(engine)
    events = stream(client, thinking=enabled(8))
    assert dict(events)["message_delta"]["thinkserve"] == STATS
    assert accumulate(events)["content"][0]["thinking"] == "Let me think."


def loop(first_turn, *, signature, thinking_text):
    """A tool loop: the assistant thought and called a tool; the user returns its result."""
    return [first_turn,
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": thinking_text, "signature": signature},
                {"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "noon"}]}]


def test_a_signed_block_comes_back_into_the_tool_loop(client, engine):
    script_thinking(engine, thinking="I need the time.")
    first = client.post("/v1/messages", json=body(thinking=enabled(8), tools=[TOOL])).get_json()
    returned = first["content"][0]
    messages = loop({"role": "user", "content": "What time is it?"}, signature=returned["signature"],
                    thinking_text=returned["thinking"])
    assert client.post("/v1/messages", json=body(thinking=enabled(8), tools=[TOOL],
                                                 messages=messages)).status_code == 200
    assert engine.requests[-1].messages[1]["reasoning_content"] == "I need the time."


def test_omitted_thinking_travels_in_its_signature(client, engine):
    script_thinking(engine, thinking="Secret reasoning.")
    omitted = {"type": "adaptive", "display": "omitted"}
    events = stream(client, thinking=omitted, tools=[TOOL])
    assert "thinking_delta" not in [data["delta"]["type"] for name, data in events if name == "content_block_delta"]
    block = accumulate(events)["content"][0]
    assert block["thinking"] == "" and block["signature"]
    messages = loop({"role": "user", "content": "What time is it?"}, signature=block["signature"],
                    thinking_text="")
    assert client.post("/v1/messages", json=body(thinking=omitted, tools=[TOOL],
                                                 messages=messages)).status_code == 200
    assert engine.requests[-1].messages[1]["reasoning_content"] == "Secret reasoning."


def test_reasoning_is_not_replayed_outside_a_tool_loop(app, client, engine):
    signature = app.extensions["thinkserve"].signer.sign("old thoughts")
    messages = [{"role": "user", "content": "q"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "old thoughts",
                                                   "signature": signature}, {"type": "text", "text": "a"}]},
                {"role": "user", "content": "a new question"}]
    assert client.post("/v1/messages", json=body(messages=messages)).status_code == 200
    assert all("reasoning_content" not in m for m in engine.requests[-1].messages)


@pytest.mark.parametrize("thinking_text, signature", [
    ("I need the time!", None),            # text altered after signing
    ("I need the time.", ""),              # no signature
    ("I need the time.", "bm90IG91cnM="),  # not one of ours
    ("", None),                            # text dropped from a block that did not carry it
])
def test_altered_or_foreign_thinking_is_400_naming_the_block(app, client, thinking_text, signature):
    good = app.extensions["thinkserve"].signer.sign("I need the time.")
    messages = loop({"role": "user", "content": "What time is it?"},
                    signature=good if signature is None else signature, thinking_text=thinking_text)
    text = assert_error(client.post("/v1/messages", json=body(tools=[TOOL], messages=messages)), 400,
                        "invalid_request_error")
    assert text.startswith("messages.1.content.0: invalid thinking block")


def test_signature_made_for_another_model_is_refused(app, client):
    from app.api.signatures import ThinkingSigner, load_or_create_key
    config = app.extensions["thinkserve"].config
    other = ThinkingSigner(load_or_create_key(config.signing_key, config.data_dir), "another-model")
    messages = loop({"role": "user", "content": "What time is it?"}, signature=other.sign("hm"),
                    thinking_text="hm")
    text = assert_error(client.post("/v1/messages", json=body(tools=[TOOL], messages=messages)), 400,
                        "invalid_request_error")
    assert text.startswith("messages.1.content.0: invalid thinking block")


def test_redacted_thinking_is_accepted_and_never_rendered(client, engine):
    messages = [{"role": "user", "content": "q"},
                {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "opaque-bytes"},
                                                  {"type": "tool_use", "id": "toolu_1", "name": "get_time",
                                                   "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "noon"}]}]
    assert client.post("/v1/messages", json=body(tools=[TOOL], messages=messages)).status_code == 200
    rendered = str(engine.requests[-1].messages)
    assert "opaque-bytes" not in rendered and "reasoning_content" not in rendered


def test_count_tokens_counts_the_thinking_prompt(client, engine):
    with_thinking = client.post("/v1/messages/count_tokens", json={**body(thinking={"type": "adaptive"}),
                                                                   "max_tokens": None}).get_json()
    created = client.post("/v1/messages", json=body(thinking={"type": "adaptive"})).get_json()
    assert with_thinking["input_tokens"] == created["usage"]["input_tokens"]


@pytest.mark.parametrize("stream_it", [False, True])
def test_thinking_on_always_starts_with_a_thinking_block(app, client, engine, stream_it):
    # The model closed its thinking at once: no ThinkingDelta at all, yet the response starts with a signed block.
    engine.script([TextDelta("42"), Finished(StopReason.END, Usage(0, 4), stats=STATS)])
    if stream_it:
        message = accumulate(stream(client, thinking=enabled(8)))
    else:
        message = client.post("/v1/messages", json=body(thinking=enabled(8))).get_json()
    thinking, text = message["content"]
    assert thinking["type"] == "thinking" and thinking["thinking"] == ""
    assert app.extensions["thinkserve"].signer.verify("", thinking["signature"])
    assert text == {"type": "text", "text": "42"}
