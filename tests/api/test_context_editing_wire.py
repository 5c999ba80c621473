"""Context editing on the wire: `context_management` in a Message, in a stream's final message_delta (raw, and
as the official SDK folds it), in count_tokens (`original_input_tokens`), in render (the playground's pane), in
Message Batches results, and 400s that name the field for invalid edits."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from app.api.context_editing.clearing import CLEARED_TOOL_RESULT

from api_helpers import MODEL, assert_error, body, stream
from context_editing_helpers import (BETA, CLEAR_THINKING, CLEAR_TOOL_USES, FREED_PER_RESULT, TOOLS,
                                     TranscriptEngine, clear_tools, count, create, tool_history, tool_uses)

HISTORY = tool_history(["read"] * 3)
EDITS = clear_tools(trigger=tool_uses(1), keep=tool_uses(1))        # clears 2 of HISTORY's 3 results
APPLIED = [{"type": CLEAR_TOOL_USES, "cleared_tool_uses": 2, "cleared_input_tokens": 2 * FREED_PER_RESULT}]
STATIC_JS = Path(__file__).resolve().parents[2] / "static" / "js"


@pytest.fixture
def engine():
    return TranscriptEngine()


def test_message_ends_with_context_management(client):
    message = create(client, HISTORY, EDITS)
    assert list(message)[-1] == "context_management" and message["context_management"] == {"applied_edits": APPLIED}


def test_a_budget_sweep_reports_its_edits_and_answers_the_edited_prompt(client, engine):
    message = create(client, HISTORY, EDITS, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024},
                     thinkserve={"budget_sweep": [0, 1024]})
    assert message["context_management"] == {"applied_edits": APPLIED}
    assert [a["budget_tokens"] for a in message["thinkserve"]["budget_sweep"]["answers"]] == [0, 1024]
    assert all(CLEARED_TOOL_RESULT in request.messages[2]["content"] for request in engine.requests[-2:])


def test_no_context_management_no_field(client):
    assert "context_management" not in create(client, HISTORY)
    assert count(client, HISTORY) == {"input_tokens": count(client, HISTORY)["input_tokens"]}


def test_the_stream_carries_it_in_the_final_message_delta(client):
    events = stream(client, messages=HISTORY, tools=TOOLS, context_management=EDITS)
    deltas = [data for name, data in events if name == "message_delta"]
    assert len(deltas) == 1 and list(deltas[0]) == ["type", "delta", "usage", "context_management"]
    assert deltas[0]["context_management"] == {"applied_edits": APPLIED}
    assert "context_management" not in events[0][1]["message"]         # message_start: not yet


def test_sdk_stream_raw_event_and_final_message(live):
    arguments = dict(model=MODEL, max_tokens=20, messages=HISTORY, tools=TOOLS, betas=[BETA],
                     context_management=EDITS)
    events = list(live.sdk.beta.messages.create(stream=True, **arguments))
    (delta,) = [event for event in events if event.type == "message_delta"]
    assert delta.context_management.to_dict() == {"applied_edits": APPLIED}
    with live.sdk.beta.messages.stream(**arguments) as streamed:
        final = streamed.get_final_message()
    assert final.context_management.applied_edits[0].cleared_tool_uses == 2


def test_sdk_count_tokens_reports_the_original_count(live):
    counted = live.sdk.beta.messages.count_tokens(model=MODEL, messages=HISTORY, tools=TOOLS, betas=[BETA],
                                                  context_management=EDITS)
    plain = live.sdk.beta.messages.count_tokens(model=MODEL, messages=HISTORY, tools=TOOLS).input_tokens
    assert counted.context_management.original_input_tokens == plain
    assert counted.input_tokens == plain - 2 * FREED_PER_RESULT
    created = live.sdk.beta.messages.create(model=MODEL, max_tokens=5, messages=HISTORY, tools=TOOLS, betas=[BETA],
                                            context_management=EDITS)
    assert created.usage.input_tokens == counted.input_tokens


def test_count_tokens_when_nothing_is_cleared(client):
    counted = count(client, HISTORY, clear_tools())
    assert counted == {"input_tokens": counted["input_tokens"],
                       "context_management": {"original_input_tokens": counted["input_tokens"]}}


def test_render_shows_the_edited_prompt_and_the_applied_edits(client):
    rendered = client.post("/v1/messages/render", json=body(messages=HISTORY, tools=TOOLS, context_management=EDITS))
    assert rendered.status_code == 200, rendered.get_data(as_text=True)
    data = rendered.get_json()
    assert data["prompt"].count(CLEARED_TOOL_RESULT) == 2 and "result2" in data["prompt"]
    assert data["context_management"] == {"original_input_tokens": data["input_tokens"] + 2 * FREED_PER_RESULT,
                                          "applied_edits": APPLIED}


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_playground_pane_describes_the_applied_edits():
    script = ("import { describeContextEdits } from './context_edits.js';"
              "console.log(JSON.stringify([describeContextEdits(%s), describeContextEdits(%s),"
              " describeContextEdits(undefined)]));") % (
        json.dumps({"original_input_tokens": 40, "applied_edits": APPLIED + [
            {"type": CLEAR_THINKING, "cleared_thinking_turns": 1, "cleared_input_tokens": 7}]}),
        json.dumps({"original_input_tokens": 40, "applied_edits": []}))
    run = subprocess.run(["node", "--input-type=module", "-e", script], cwd=STATIC_JS, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    applied, none, absent = json.loads(run.stdout)
    assert applied == ["context editing: 40 tokens before the edits",
                       f"clear_tool_uses_20250919: 2 tool uses cleared, {2 * FREED_PER_RESULT} tokens",
                       "clear_thinking_20251015: 1 thinking turn cleared, 7 tokens"]
    assert none == ["context editing: 40 tokens before the edits", "no edit applied"]
    assert absent == []


def test_a_batch_request_is_edited_as_a_message_is(make_app, engine):
    app = make_app(engine)
    client = app.test_client()
    try:
        params = body(messages=HISTORY, tools=TOOLS, context_management=EDITS)
        created = client.post("/v1/messages/batches", json={"requests": [{"custom_id": "a", "params": params}]})
        batch_id = created.get_json()["id"]
        deadline = time.monotonic() + 30
        while client.get(f"/v1/messages/batches/{batch_id}").get_json()["processing_status"] != "ended":
            assert time.monotonic() < deadline, "the batch did not end"
            time.sleep(0.02)
        line = json.loads(client.get(f"/v1/messages/batches/{batch_id}/results").get_data(as_text=True))
        assert line["result"]["type"] == "succeeded"
        assert line["result"]["message"]["context_management"] == {"applied_edits": APPLIED}
        assert CLEARED_TOOL_RESULT in engine.prepared[-1].text
    finally:
        app.extensions["thinkserve.batches"].close()


def edit(**fields) -> dict:
    return {"edits": [{"type": CLEAR_TOOL_USES, **fields}]}


@pytest.mark.parametrize("context_management, message", [
    ("all", "context_management: Input should be an object"),
    ({"edits": {"type": CLEAR_TOOL_USES}}, "context_management.edits: Input should be a valid list"),
    ({"edits": ["clear"]}, "context_management.edits.0: Input should be an object"),
    ({"edits": [{}]}, "context_management.edits.0.type: Field required"),
    ({"edits": [{"type": "clear_everything"}]}, "context_management.edits.0.type: unknown context management edit"),
    ({"edits": [{"type": "compact_20260112"}]}, "context_management.edits.0.type: compact_20260112 (server-side "
                                                "compaction) is not supported"),
    (edit(trigger={"type": "messages", "value": 3}), "context_management.edits.0.trigger.type: Input should be"),
    (edit(trigger={"type": "input_tokens", "value": 0}), "context_management.edits.0.trigger.value: Input should "
                                                         "be greater than or equal to 1"),
    (edit(trigger={"type": "input_tokens", "value": "9"}), "context_management.edits.0.trigger.value: Input "
                                                           "should be a valid integer"),
    (edit(keep={"type": "input_tokens", "value": 3}), "context_management.edits.0.keep.type: Input should be "
                                                      "'tool_uses'"),
    (edit(keep={"type": "tool_uses", "value": -1}), "context_management.edits.0.keep.value: Input should be "
                                                    "greater than or equal to 0"),
    (edit(clear_at_least={"type": "tool_uses", "value": 3}), "context_management.edits.0.clear_at_least.type: "),
    (edit(exclude_tools="read"), "context_management.edits.0.exclude_tools: Input should be a valid list"),
    (edit(clear_tool_inputs="yes"), "context_management.edits.0.clear_tool_inputs: must be true, false or a list"),
    ({"edits": [{"type": CLEAR_THINKING, "keep": {"type": "thinking_turns", "value": 0}}]},
     "context_management.edits.0.keep.value: must be an integer greater than 0"),
    ({"edits": [{"type": CLEAR_THINKING, "keep": "some"}]}, 'context_management.edits.0.keep: must be "all" or'),
    (edit(trigger=100), "context_management.edits.0.trigger: Input should be an object"),
    ({"edits": [{"type": CLEAR_TOOL_USES}, {"type": CLEAR_THINKING}]},
     "context_management.edits.1.type: when edits are combined, clear_thinking_20251015 must be listed first"),
    ({"edits": [{"type": CLEAR_TOOL_USES}, {"type": CLEAR_TOOL_USES}]},
     "context_management.edits.1.type: clear_tool_uses_20250919 is given more than once"),
])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens", "/v1/messages/render"])
def test_invalid_edits_are_400_naming_the_field(client, engine, path, context_management, message):
    payload = body(messages=HISTORY, tools=TOOLS, context_management=context_management,
                   **({} if path == "/v1/messages" else {"max_tokens": ...}))
    error = assert_error(client.post(path, json=payload), 400, "invalid_request_error")
    assert error.startswith(message), error
    assert engine.requests == []
