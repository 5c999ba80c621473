"""Tool-call formats: detection from chat templates, rendering, and the instructions for templates without tools."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from tool_fixtures import TICKET, TOOLS, WEATHER

from app.engine.tools.formats import (GENERIC, HERMES, LLAMA3, MISTRAL, detect_tool_format, generic_tool_instructions,
                                     get_tool_format, render_tool_call, render_tool_calls, to_template_tools,
                                     tool_specs)

QWEN_LIKE = ("{%- if tools %}<|im_start|>system\n# Tools\n<tools>{% for tool in tools %}{{ tool | tojson }}"
             "{% endfor %}</tools>\nreturn <tool_call>\n{\"name\": <function-name>, \"arguments\": <args>}\n"
             "</tool_call>{%- endif %}")
LLAMA31_LIKE = ('<|start_header_id|>system<|end_header_id|>{%- if tools is not none %}Respond in the format '
                '{"name": function name, "parameters": dictionary of argument name and its value}{%- endif %}')
MISTRAL_LIKE = "{%- if tools %}[AVAILABLE_TOOLS]{{ tools|tojson }}[/AVAILABLE_TOOLS]{% endif %}[TOOL_CALLS]"
HERMES_LLAMA3 = "<|start_header_id|>{% if tools %}<tool_call>{\"parameters\": 1}</tool_call>{% endif %}"


@pytest.mark.parametrize("template, expected", [
    (QWEN_LIKE, HERMES), (LLAMA31_LIKE, LLAMA3), (MISTRAL_LIKE, MISTRAL), (HERMES_LLAMA3, HERMES),
    ("{{ messages }}", GENERIC), ({"default": "{{ messages }}", "tool_use": QWEN_LIKE}, HERMES), (None, GENERIC),
    ("{% if tools %}<|tool_calls|>{% endif %}", GENERIC),        # tool-aware, but in a syntax we do not parse
])
def test_detection_from_the_template(template, expected):
    assert detect_tool_format(SimpleNamespace(chat_template=template)) is expected


def test_smollm2_has_no_tools_in_its_template(smollm_tokenizer):
    fmt = detect_tool_format(smollm_tokenizer)
    assert fmt is GENERIC and not fmt.template_renders_tools


def test_formats_by_name():
    assert get_tool_format("mistral") is MISTRAL
    with pytest.raises(ValueError, match="hermes"):
        get_tool_format("pythonic")


def test_rendering_matches_each_native_syntax():
    arguments = {"city": "Zürich", "unit": "celsius"}
    assert render_tool_call(HERMES, "get_weather", arguments) == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}}\n</tool_call>')
    assert render_tool_call(LLAMA3, "get_weather", {}) == '{"name": "get_weather", "parameters": {}}'
    assert render_tool_calls(MISTRAL, [("a", {}), ("b", {"x": 1})]) == (
        '[TOOL_CALLS][{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": 1}}]')
    assert render_tool_calls(HERMES, [("a", {}), ("b", {})]).count("</tool_call>\n<tool_call>") == 1


def test_the_closing_tag_is_what_follows_the_json():
    assert (HERMES.closing_tag, GENERIC.closing_tag, LLAMA3.closing_tag, MISTRAL.closing_tag) == (
        "</tool_call>", "</tool_call>", "", "")


def test_generic_instructions_list_every_tool_and_the_exact_syntax():
    text = generic_tool_instructions(TOOLS)
    listed = [json.loads(line) for line in text.split("<tools>\n")[1].split("\n</tools>")[0].splitlines()]
    assert listed == [{"name": t["name"], "description": t["description"], "input_schema": t["input_schema"]}
                      for t in TOOLS]
    assert '<tool_call>\n{"name": "<tool name>", "arguments": {"<argument>": "<value>"}}\n</tool_call>' in text


def test_both_tool_shapes_are_accepted():
    function_shape = to_template_tools([WEATHER])
    assert function_shape == [{"type": "function", "function": {
        "name": "get_weather", "description": WEATHER["description"], "parameters": WEATHER["input_schema"]}}]
    assert tool_specs(function_shape) == tool_specs([WEATHER])
    with pytest.raises(ValueError, match="create_ticket"):
        tool_specs([TICKET, WEATHER, TICKET])
