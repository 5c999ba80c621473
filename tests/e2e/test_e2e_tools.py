"""Tool use end to end: the official SDK and raw HTTP against the real server on the default model.

SmolLM2-135M knows nothing of tools; every valid call here is the grammar's doing. Inputs are checked with
jsonschema directly, not with the server's own validator."""
from __future__ import annotations

import json

import jiter
import requests
from jsonschema import Draft202012Validator
from tool_fixtures import TICKET, WEATHER

from e2e_server import API_KEY, MODEL, prompt_tokens

PARIS = [{"role": "user", "content": "What is the weather in Paris?"}]
BEGGING = [{"role": "user", "content": "Call the get_weather tool for Paris now. Answer with a <tool_call> only."}]
SAMPLES = 6


def valid(tool: dict, tool_input) -> bool:
    return not list(Draft202012Validator(tool["input_schema"]).iter_errors(tool_input))


def tool_uses(message) -> list:
    return [block for block in message.content if block.type == "tool_use"]


def test_a_named_tool_streams_a_valid_call_whose_json_is_a_valid_prefix_at_every_delta(client):
    arguments, prefixes = "", 0
    with client.messages.stream(model=MODEL, max_tokens=120, messages=PARIS, tools=[WEATHER, TICKET],
                                tool_choice={"type": "tool", "name": "get_weather"}) as stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                arguments += event.delta.partial_json
                jiter.from_json(arguments.encode(), partial_mode="trailing-strings")   # raises if not a prefix
                prefixes += 1
        message = stream.get_final_message()
    (call,) = tool_uses(message)
    assert message.content == [call] and message.stop_reason == "tool_use"
    assert call.id.startswith("toolu_") and call.name == "get_weather" and valid(WEATHER, call.input)
    assert prefixes > 1 and json.loads(arguments) == call.input


def test_any_without_parallel_calls_gives_exactly_one_valid_call(client):
    message = client.messages.create(model=MODEL, max_tokens=160, messages=PARIS, tools=[WEATHER, TICKET],
                                     tool_choice={"type": "any", "disable_parallel_tool_use": True})
    (call,) = tool_uses(message)
    assert message.stop_reason == "tool_use"
    assert valid({"get_weather": WEATHER, "create_ticket": TICKET}[call.name], call.input)


def test_none_makes_no_call_even_when_the_prompt_begs_for_one(client):
    begged = client.messages.create(model=MODEL, max_tokens=24, messages=BEGGING, tools=[WEATHER],
                                    extra_body={"temperature": 0})
    assert tool_uses(begged), "the prompt should make the model call when it may"
    message = client.messages.create(model=MODEL, max_tokens=24, messages=BEGGING, tools=[WEATHER],
                                     tool_choice={"type": "none"}, extra_body={"temperature": 0})
    assert not tool_uses(message) and message.stop_reason != "tool_use"
    assert "<tool_call>" not in "".join(block.text for block in message.content if block.type == "text")


def test_a_demanding_schema_is_satisfied_at_temperature_one_on_every_sample(client):
    # enum, integer bounds, a pattern, a nested object, an array with maxItems, additionalProperties false
    inputs = []
    for _ in range(SAMPLES):
        message = client.messages.create(model=MODEL, max_tokens=160, tools=[WEATHER, TICKET],
                                         tool_choice={"type": "tool", "name": "create_ticket"},
                                         messages=[{"role": "user", "content": "The printer is broken again."}],
                                         extra_body={"temperature": 1.0})
        (call,) = tool_uses(message)
        assert valid(TICKET, call.input), call.input
        inputs.append(json.dumps(call.input, sort_keys=True))
    assert len(set(inputs)) > 1                      # really sampled


def test_the_tool_result_round_trip_with_an_error_result(client, server):
    first = client.messages.create(model=MODEL, max_tokens=120, messages=PARIS, tools=[WEATHER],
                                   tool_choice={"type": "tool", "name": "get_weather"})
    (call,) = tool_uses(first)
    conversation = PARIS + [
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "is_error": True,
                                      "content": [{"type": "text", "text": "weather service unavailable"}]}]}]
    second = client.messages.create(model=MODEL, max_tokens=40, messages=conversation, tools=[WEATHER])
    assert second.stop_reason in ("end_turn", "max_tokens", "tool_use")
    assert prompt_tokens(second.usage) == client.messages.count_tokens(model=MODEL, messages=conversation,
                                                                       tools=[WEATHER]).input_tokens
    # The next turn of a tool loop starts with the previous turn: that much is read from the prefix cache.
    assert second.usage.cache_read_input_tokens >= first.usage.input_tokens // 2
    # What the model saw: its own call as it writes calls, then the failed result leading the user turn.
    seen = requests.post(server.base_url + "/v1/messages/render", timeout=30, headers={"x-api-key": API_KEY},
                         json={"model": MODEL, "messages": conversation, "tools": [WEATHER]}).json()
    assert '<tool_call>\n{"name": "get_weather", "arguments": ' + json.dumps(call.input) in seen["prompt"]
    assert (f'<tool_result tool_use_id="{call.id}" is_error="true">\nweather service unavailable\n</tool_result>'
            in seen["prompt"])
    assert seen["input_tokens"] == prompt_tokens(second.usage)


BASH = {  # as Claude Code sends it
    "name": "Bash",
    "description": "Executes a given bash command and returns its output.",
    "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
        "properties": {"command": {"description": "The command to execute", "type": "string"},
                       "timeout": {"description": "Optional timeout in milliseconds (max 600000)", "type": "number"},
                       "description": {"description": "What this command does", "type": "string"},
                       "run_in_background": {"type": "boolean"}},
        "required": ["command"], "additionalProperties": False},
    "cache_control": {"type": "ephemeral"},
}
PLACEHOLDER = {"name": "DeferredToolPlaceholder", "description": "Loaded on demand.", "defer_loading": True,
               "strict": True, "input_examples": [{}],
               "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                                "properties": {}, "additionalProperties": False}}


def test_claude_code_tool_loop_shapes_are_accepted(server):
    body = {
        "model": "claude-opus-5-5", "max_tokens": 64, "stream": True,
        "metadata": {"user_id": json.dumps({"device_id": "d", "session_id": "s"})},
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "tools": [BASH, PLACEHOLDER],
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Print hi with bash."}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Running it."},
                {"type": "tool_use", "id": "toolu_01A", "name": "Bash",
                 "input": {"command": "echo hi", "description": "Print hi"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": "hi",
                                          "is_error": False, "cache_control": {"type": "ephemeral"}}]}],
    }
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01",
               "anthropic-beta": "claude-code-20250219,advanced-tool-use-2025-11-20,context-management-2025-06-27"}
    with requests.post(server.base_url + "/v1/messages", json=body, headers=headers, stream=True,
                       timeout=120) as response:
        assert response.status_code == 200, response.text
        names = [line[len("event: "):] for line in response.iter_lines(decode_unicode=True)
                 if line.startswith("event: ")]
    assert names[0] == "message_start" and names[-1] == "message_stop" and "error" not in names
