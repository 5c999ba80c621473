"""Context editing (`context_management`, beta context-management-2025-06-27): what each edit clears, when it
applies, and that the model's prompt (what the engine was given) lacks the cleared content and holds the
placeholder. The response shapes, streaming, count_tokens, render, batches and errors are in
test_context_editing_wire.py."""
from __future__ import annotations

import pytest

from app.api.context_editing.clearing import CLEARED_TOOL_RESULT

from api_helpers import MODEL
from context_editing_helpers import (BETA, CLEAR_THINKING, CLEAR_TOOL_USES, FREED_PER_INPUT, FREED_PER_RESULT,
                                     THINKING_TOKENS, TOOLS, TranscriptEngine, clear_thinking, clear_tools, count,
                                     create, input_tokens, thinking_block, thinking_history, thought, tool_history,
                                     tool_uses)


@pytest.fixture
def engine():
    return TranscriptEngine()


@pytest.fixture
def signer(app):
    return app.extensions["thinkserve"].signer


def prompt_of(engine) -> str:
    """The prompt the last generation was submitted with."""
    return engine.prepared[-1].text


def results_in(prompt: str, n: int) -> list[int]:
    return [i for i in range(n) if f"result{i}" in prompt]


# -- clear_tool_uses_20250919 -------------------------------------------------------------------------------------

def test_sdk_clears_the_oldest_tool_results_once_the_trigger_is_exceeded(live):
    history = tool_history(["read"] * 4)
    original = live.sdk.beta.messages.count_tokens(model=MODEL, messages=history, tools=TOOLS).input_tokens
    message = live.sdk.beta.messages.create(
        model=MODEL, max_tokens=50, messages=history, tools=TOOLS, betas=[BETA],
        context_management=clear_tools(trigger=input_tokens(original - 1), keep=tool_uses(1)))
    (edit,) = message.context_management.applied_edits
    assert (edit.type, edit.cleared_tool_uses) == (CLEAR_TOOL_USES, 3)
    assert edit.cleared_input_tokens == 3 * FREED_PER_RESULT == original - message.usage.input_tokens
    prompt = prompt_of(live.engine)
    assert prompt.count(CLEARED_TOOL_RESULT) == 3 and results_in(prompt, 4) == [3]
    assert all(f'<call> read {{"path": "file{i}"}}' in prompt for i in range(4))     # the calls stay


@pytest.mark.parametrize("kind, offset, applies", [
    ("input_tokens", 0, False),       # the prompt must exceed the value, not reach it
    ("input_tokens", -1, True),
    ("tool_uses", 0, False),
    ("tool_uses", -1, True),
])
def test_trigger(client, engine, kind, offset, applies):
    history = tool_history(["read"] * 4)
    original = count(client, history)["input_tokens"]
    value = (original if kind == "input_tokens" else 4) + offset
    message = create(client, history, clear_tools(trigger={"type": kind, "value": value}, keep=tool_uses(1)))
    cleared = [{"type": CLEAR_TOOL_USES, "cleared_tool_uses": 3, "cleared_input_tokens": 3 * FREED_PER_RESULT}]
    assert message["context_management"] == {"applied_edits": cleared if applies else []}
    assert results_in(prompt_of(engine), 4) == ([3] if applies else [0, 1, 2, 3])
    assert message["usage"]["input_tokens"] == original - (3 * FREED_PER_RESULT if applies else 0)


def test_defaults_trigger_past_100000_input_tokens_and_keep_3_tool_uses(client):
    small = tool_history(["read"] * 4)
    assert count(client, small, clear_tools())["input_tokens"] == count(client, small)["input_tokens"]
    big = tool_history(["read"] * 4)
    big[2]["content"][0]["content"] = "result0 " + "word " * 100_000      # the oldest result: over the trigger
    counted = count(client, big, clear_tools())
    original = counted["context_management"]["original_input_tokens"]
    assert original > 100_000 and counted["input_tokens"] == original - 100_001 + len(CLEARED_TOOL_RESULT.split())


@pytest.mark.parametrize("keep, kept", [(0, []), (1, [3]), (2, [2, 3]), (4, [0, 1, 2, 3]), (9, [0, 1, 2, 3])])
def test_keep_spares_the_most_recent_tool_uses(client, engine, keep, kept):
    message = create(client, tool_history(["read"] * 4), clear_tools(trigger=tool_uses(1), keep=tool_uses(keep)))
    assert results_in(prompt_of(engine), 4) == kept
    assert prompt_of(engine).count(CLEARED_TOOL_RESULT) == 4 - len(kept)
    applied = message["context_management"]["applied_edits"]
    assert [edit["cleared_tool_uses"] for edit in applied] == ([4 - len(kept)] if len(kept) < 4 else [])


@pytest.mark.parametrize("at_least, applies", [(3 * FREED_PER_RESULT, True), (3 * FREED_PER_RESULT + 1, False)])
def test_clear_at_least_refuses_an_edit_that_frees_too_little(client, engine, at_least, applies):
    history = tool_history(["read"] * 4)
    message = create(client, history, clear_tools(trigger=tool_uses(1), keep=tool_uses(1),
                                                  clear_at_least={"type": "input_tokens", "value": at_least}))
    assert bool(message["context_management"]["applied_edits"]) is applies
    assert (CLEARED_TOOL_RESULT in prompt_of(engine)) is applies
    assert message["usage"]["input_tokens"] == count(client, history)["input_tokens"] - applies * at_least


def test_exclude_tools_are_never_cleared_and_keep_counts_every_tool(client, engine):
    # keep 1 spares search3, the latest use; of the older ones only the read results are cleared.
    message = create(client, tool_history(["read", "search", "read", "search"]),
                     clear_tools(trigger=tool_uses(1), keep=tool_uses(1), exclude_tools=["search"]))
    assert results_in(prompt_of(engine), 4) == [1, 3]
    assert message["context_management"]["applied_edits"][0]["cleared_tool_uses"] == 2


def calls_of(engine) -> dict[str, dict]:
    """Each tool call's arguments, as the engine was given them."""
    return {call["id"]: call["function"]["arguments"] for message in engine.requests[-1].messages
            for call in message.get("tool_calls", ())}


def test_clear_tool_inputs_true_clears_the_inputs_of_the_cleared_uses(client, engine):
    message = create(client, tool_history(["read"] * 4),
                     clear_tools(trigger=tool_uses(1), keep=tool_uses(2), clear_tool_inputs=True))
    assert calls_of(engine) == {"toolu_0": {}, "toolu_1": {}, "toolu_2": {"path": "file2"},
                                "toolu_3": {"path": "file3"}}
    assert prompt_of(engine).count("<call> read {}") == 2 and results_in(prompt_of(engine), 4) == [2, 3]
    (edit,) = message["context_management"]["applied_edits"]
    assert edit["cleared_input_tokens"] == 2 * (FREED_PER_RESULT + FREED_PER_INPUT)


def test_clear_tool_inputs_names_the_tools_whose_inputs_go(client, engine):
    create(client, tool_history(["read", "search", "read", "search"]),
           clear_tools(trigger=tool_uses(1), keep=tool_uses(0), clear_tool_inputs=["search"]))
    assert calls_of(engine) == {"toolu_0": {"path": "file0"}, "toolu_1": {}, "toolu_2": {"path": "file2"},
                                "toolu_3": {}}
    assert results_in(prompt_of(engine), 4) == []          # every result is cleared; only search inputs are


def test_without_clear_tool_inputs_the_inputs_stay(client, engine):
    create(client, tool_history(["read"] * 2), clear_tools(trigger=tool_uses(1), keep=tool_uses(0)))
    assert calls_of(engine) == {"toolu_0": {"path": "file0"}, "toolu_1": {"path": "file1"}}


# -- clear_thinking_20251015 --------------------------------------------------------------------------------------

@pytest.mark.parametrize("keep, kept", [
    ({"type": "thinking_turns", "value": 1}, [2]),
    ({"type": "thinking_turns", "value": 2}, [1, 2]),
    ({"type": "thinking_turns", "value": 5}, [0, 1, 2]),
    ("all", [0, 1, 2]),
    ({"type": "all"}, [0, 1, 2]),
    (None, [2]),                         # the documented default: the last assistant turn's thinking
])
def test_clear_thinking_keeps_the_latest_turns(client, engine, signer, keep, kept):
    history = thinking_history(signer)
    message = create(client, history, clear_thinking(**({} if keep is None else {"keep": keep})))
    shown = [i for i in range(3) if thought(i) in prompt_of(engine)]
    assert shown == kept
    cleared = 3 - len(kept)
    assert message["context_management"]["applied_edits"] == ([{
        "type": CLEAR_THINKING, "cleared_thinking_turns": cleared, "cleared_input_tokens": cleared * THINKING_TOKENS}]
        if cleared else [])


def test_without_clear_thinking_earlier_turns_show_no_thinking(client, engine, signer):
    # The converter's own default: a finished turn's thinking is not shown; "keep" above is what shows more.
    create(client, thinking_history(signer))
    assert "<think>" not in prompt_of(engine)


def test_a_tool_loop_is_one_assistant_turn(client, engine, signer):
    messages = [{"role": "user", "content": "q0"},
                {"role": "assistant", "content": [thinking_block(signer, 0), {"type": "text", "text": "a0"}]},
                {"role": "user", "content": "q1"},
                {"role": "assistant", "content": [thinking_block(signer, 1), {"type": "tool_use", "id": "toolu_1",
                                                                             "name": "read", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "r"}]},
                {"role": "assistant", "content": [thinking_block(signer, 2), {"type": "text", "text": "a2"}]},
                {"role": "user", "content": "q3"}]
    message = create(client, messages, clear_thinking(keep={"type": "thinking_turns", "value": 1}))
    assert [i for i in range(3) if thought(i) in prompt_of(engine)] == [1, 2]
    assert message["context_management"]["applied_edits"][0]["cleared_thinking_turns"] == 1


# -- both ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("between, applied", [(True, [CLEAR_THINKING]), (False, [CLEAR_THINKING, CLEAR_TOOL_USES])])
def test_thinking_is_cleared_first_and_the_tool_trigger_sees_the_result(client, engine, signer, between, applied):
    history = thinking_history(signer)
    history[-1:] = tool_history(["read"] * 2)          # the last question becomes a tool loop
    keep_all = count(client, history, clear_thinking(keep="all"))["input_tokens"]
    after_thinking = keep_all - 2 * THINKING_TOKENS
    trigger = after_thinking if between else after_thinking - 1    # "between": only the original exceeds it
    edits = {"edits": [{"type": CLEAR_THINKING},
                       {"type": CLEAR_TOOL_USES, "trigger": input_tokens(trigger), "keep": tool_uses(1)}]}
    message = create(client, history, edits)
    assert [edit["type"] for edit in message["context_management"]["applied_edits"]] == applied
    assert (CLEARED_TOOL_RESULT in prompt_of(engine)) is (not between)
