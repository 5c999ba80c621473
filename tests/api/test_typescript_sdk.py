"""The official TypeScript SDK (@anthropic-ai/sdk, pinned in tests/typescript/package.json and installed there by
`make setup-dev`) against the app under a real waitress server, with thinkserve's research extensions on: its stream
helper (`messages.stream`, `text` events, `finalMessage()`) must work unchanged and agree with `messages.create`.
tests/typescript/stream_helpers.mjs makes both calls with one body and prints what it got. Skipped, with the reason,
without node or without the SDK installed."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from app.engine.events import BlockEnd, Finished, StopReason, TextDelta, ThinkingDelta, ToolArgsDelta, \
    ToolCallStart, Usage

from api_helpers import MODEL

TYPESCRIPT = Path(__file__).resolve().parents[1] / "typescript"
SCRIPT = TYPESCRIPT / "stream_helpers.mjs"
SDK = TYPESCRIPT / "node_modules" / "@anthropic-ai" / "sdk"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed: the TypeScript SDK tests need it"),
    pytest.mark.skipif(not (SDK / "package.json").is_file(),
                       reason="@anthropic-ai/sdk is not installed in tests/typescript (`make setup-dev`, or "
                              "`npm ci --prefix tests/typescript`)"),
]

HI = [{"role": "user", "content": "hi"}]
TOOLS = [{"name": "get_weather", "description": "weather", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
THINKING = {"type": "enabled", "budget_tokens": 1024}
# What the real engine reports for `thinkserve: {"logprobs": 2}` (token_figures.report), shortened.
LOGPROBS = {"thinking": {"tokens": [{"id": 5, "token": "Need", "logprob": -0.5, "entropy": 1.25, "top": [
                {"id": 5, "token": "Need", "logprob": -0.5}, {"id": 9, "token": "Let", "logprob": -1.5}]}],
                         "mean_logprob": -0.5, "mean_entropy": 1.25},
            "answer": {"tokens": [{"id": 7, "token": "42", "logprob": -0.25, "entropy": 0.5, "top": [
                {"id": 7, "token": "42", "logprob": -0.25}, {"id": 8, "token": "41", "logprob": -2.0}]}],
                       "mean_logprob": -0.25, "mean_entropy": 0.5}}
STATS = {"thinking_tokens": 2, "budget_tokens": 1024, "budget_forced": False, "logprobs": LOGPROBS}


def run_sdk(live, body: dict) -> dict:
    """Both calls of stream_helpers.mjs with this body: {created, final, texts, thinkserve}."""
    done = subprocess.run([NODE, str(SCRIPT), live.url, "k", json.dumps(body)], capture_output=True, text=True,
                          timeout=60, cwd=TYPESCRIPT)
    assert done.returncode == 0, f"the TypeScript SDK failed:\n{done.stderr}"
    return json.loads(done.stdout)


def script_twice(live, events: list) -> None:
    """The fake engine takes one script per submitted generation: one for create, one for the stream."""
    for _ in range(2):
        live.engine.script(list(events))


def test_stream_helper_with_thinking_and_logprobs(live):
    script_twice(live, [ThinkingDelta("Need "), ThinkingDelta("an answer."), BlockEnd(), TextDelta("The answer"),
                        TextDelta(" is "), TextDelta("42."), Finished(StopReason.END, Usage(0, 9), stats=STATS)])
    got = run_sdk(live, {"model": MODEL, "max_tokens": 2048, "messages": HI, "thinking": THINKING,
                         "thinkserve": {"logprobs": 2}})
    created, final = got["created"], got["final"]
    assert [request.logprobs for request in live.engine.requests] == [2, 2]      # the extension reached the engine
    assert final["content"] == created["content"]
    thinking, text = final["content"]
    assert (thinking["type"], thinking["thinking"]) == ("thinking", "Need an answer.")
    assert live.app.extensions["thinkserve"].signer.verify("Need an answer.", thinking["signature"])
    assert (text["type"], text["text"]) == ("text", "The answer is 42.")
    assert "".join(got["texts"]) == text["text"] and got["texts"] == ["The answer", " is ", "42."]
    assert final["stop_reason"] == created["stop_reason"] == "end_turn"
    assert final["usage"]["output_tokens"] == created["usage"]["output_tokens"] == 9
    assert final["usage"]["input_tokens"] == created["usage"]["input_tokens"]
    # The figures: on the Message from create, and on the streamed message_delta (the accumulator drops them).
    assert created["thinkserve"] == got["thinkserve"] == STATS


def test_stream_helper_with_tool_use_and_logprobs(live):
    script_twice(live, [ThinkingDelta("Need weather."), BlockEnd(), TextDelta("Checking."), BlockEnd(),
                        ToolCallStart("1", "get_weather"), ToolArgsDelta('{"ci'), ToolArgsDelta('ty": "Par'),
                        ToolArgsDelta('is"}'), BlockEnd(), Finished(StopReason.TOOL_CALL, Usage(0, 17), stats=STATS)])
    got = run_sdk(live, {"model": MODEL, "max_tokens": 2048, "messages": HI, "tools": TOOLS, "thinking": THINKING,
                         "thinkserve": {"logprobs": 2}})
    created, final = got["created"], got["final"]
    assert final["content"] == created["content"]
    tool = final["content"][-1]
    assert (tool["type"], tool["id"], tool["name"]) == ("tool_use", "toolu_1", "get_weather")
    assert tool["input"] == created["content"][-1]["input"] == {"city": "Paris"}
    assert got["texts"] == ["Checking."]
    assert final["stop_reason"] == created["stop_reason"] == "tool_use"
    assert created["thinkserve"] == got["thinkserve"] == STATS


def test_seed_is_accepted(live):
    script_twice(live, [TextDelta("Hello"), TextDelta(" there")])
    got = run_sdk(live, {"model": MODEL, "max_tokens": 50, "messages": HI, "thinkserve": {"seed": 5}})
    assert [request.sampling.seed for request in live.engine.requests] == [5, 5]
    assert got["final"]["content"] == got["created"]["content"] == [{"type": "text", "text": "Hello there"}]
    assert got["texts"] == ["Hello", " there"]
    assert got["final"]["stop_reason"] == got["created"]["stop_reason"] == "end_turn"
