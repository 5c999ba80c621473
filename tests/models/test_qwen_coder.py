"""Qwen2.5-Coder-0.5B-Instruct through a real server: its drifted tool calls become valid calls, its native Hermes
tool round trip holds, prompted thinking keeps its budget on a second architecture, and Claude Code's tool loop runs
commands on it."""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import jsonschema
import pytest

from app.launcher import ROOT
from models_server import API_KEY, MODEL

TOOLS = [
    {"name": "Bash", "description": "Run a shell command and return its output.",
     "input_schema": {"type": "object", "properties": {"command": {"type": "string"},
                                                       "timeout": {"type": "integer"}},
                      "required": ["command"], "additionalProperties": False}},
    {"name": "Read", "description": "Read a file.",
     "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}},
                      "required": ["file_path"], "additionalProperties": False}},
]
SCHEMAS = {tool["name"]: tool["input_schema"] for tool in TOOLS}
ASK = [{"role": "user", "content": "Run the shell command: cat notes.txt and tell me what it printed."}]
# What makes a small model write its calls as bare JSON (as Claude Code's long system prompt does for this one).
JSON_HABIT = ("You are a coding agent. To use a tool, reply with only a JSON object: "
              '{"name": <tool name>, "arguments": <object>}.')


def drifted_text(text: str) -> bool:
    start = text.lstrip()
    return start.startswith(("{", "```", "[{")) and '"name"' in start[:40]


@pytest.mark.parametrize("system", [JSON_HABIT, None])
def test_every_call_is_a_valid_call_of_an_offered_tool_whatever_form_it_took(qwen, system):
    forms = []
    for _ in range(4):                              # sampled at temperature 1, as Claude Code asks
        extra = {} if system is None else {"system": system}
        message = qwen.messages.create(model=MODEL, max_tokens=96, tools=TOOLS, messages=ASK, **extra)
        for block in message.content:
            if block.type == "tool_use":
                jsonschema.validate(block.input, SCHEMAS[block.name])
            else:
                assert not drifted_text(block.text), block.text        # a drifted call never reaches the client
        forms += (message.model_extra.get("thinkserve") or {}).get("tool_call_forms", [])
    assert forms, "the model made no call in 4 tries"
    if system == JSON_HABIT:
        assert any(form != "native" for form in forms), forms          # the drifts were recovered


def test_a_plain_json_answer_without_tools_is_untouched(qwen):
    message = qwen.messages.create(model=MODEL, max_tokens=40, system=JSON_HABIT, messages=ASK,
                                   extra_body={"temperature": 0})
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text.lstrip().startswith("{") and message.stop_reason in ("end_turn", "max_tokens")


def test_the_native_hermes_round_trip(qwen, qwen_server):
    import requests
    messages = ASK + [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash",
                                           "input": {"command": "cat notes.txt"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": "The code word is PLUM."}]}]
    rendered = requests.post(qwen_server.base_url + "/v1/messages/render", timeout=60,
                             headers={"x-api-key": qwen.api_key},
                             json={"model": MODEL, "max_tokens": 64, "tools": TOOLS, "messages": messages}).json()
    assert "<tool_call>" in rendered["prompt"] and "<tool_response>\nThe code word is PLUM." in rendered["prompt"]
    message = qwen.messages.create(model=MODEL, max_tokens=64, tools=TOOLS, messages=messages,
                                   extra_body={"temperature": 0})
    usage = message.usage
    assert usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens \
        == rendered["input_tokens"]
    assert message.stop_reason in ("end_turn", "tool_use", "max_tokens")
    for block in message.content:          # a 0.5B model may answer or call again; either way, a valid block
        if block.type == "tool_use":
            jsonschema.validate(block.input, SCHEMAS[block.name])


def test_prompted_thinking_keeps_its_budget_on_qwen2(qwen):
    message = qwen.messages.create(model=MODEL, max_tokens=96, messages=[{"role": "user", "content": "What is 12*7?"}],
                                   thinking={"type": "enabled", "budget_tokens": 24}, extra_body={"temperature": 0})
    assert [block.type for block in message.content][:1] == ["thinking"]
    assert message.model_extra["thinkserve"]["thinking_tokens"] <= 24
    assert any(block.type == "text" and block.text.strip() for block in message.content)


def claude_binary() -> str | None:
    return os.environ.get("CLAUDE_CODE_BIN") or shutil.which("claude")


@pytest.mark.skipif(claude_binary() is None, reason="Claude Code not found: set CLAUDE_CODE_BIN or put claude on PATH")
def test_claude_code_runs_the_models_calls(qwen_server):
    spec = importlib.util.spec_from_file_location("claude_code_loop", Path(ROOT) / "bench" / "claude_code_loop.py")
    loop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loop)
    runs = [loop.one_run(claude_binary(), qwen_server.base_url, MODEL, timeout_s=600, api_key=API_KEY)
            for _ in range(2)]
    assert any(run["calls"] for run in runs), runs     # before recovery: 0 calls in 10 runs; after: 10 in 10
