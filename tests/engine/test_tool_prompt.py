"""Tools in the prompt, on both paths: the default model's template (no tool support: the generic format, taught in
the system prompt) and a Qwen2.5-like template that renders tools, calls and results itself."""
from __future__ import annotations

import json

from engine_helpers import HERMES_LIKE_TEMPLATE, with_template
from tool_fixtures import WEATHER

from app.engine.model.prompt import render_prompt
from app.engine.request import GenerationRequest, ToolChoice
from app.engine.tools.formats import GENERIC, HERMES, detect_tool_format, generic_tool_instructions

CALL = {"id": "toolu_1", "type": "function", "function": {"name": "get_weather",
                                                          "arguments": {"city": "Paris", "unit": "celsius"}}}
LOOP = (
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "Checking.", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "toolu_1", "name": "get_weather", "content": "timeout", "is_error": True},
    {"role": "user", "content": "Try again?"},
)


def request(messages=LOOP, **options) -> GenerationRequest:
    return GenerationRequest(messages=messages, tools=(WEATHER,), **options)


def test_the_default_model_is_taught_the_generic_format_in_its_system_prompt(smollm_tokenizer):
    assert detect_tool_format(smollm_tokenizer) is GENERIC
    prompt = render_prompt(smollm_tokenizer, request())
    system_turn = prompt.split("<|im_end|>")[0]
    assert system_turn.endswith("Be brief.\n\n" + generic_tool_instructions([WEATHER]))
    assert json.dumps(WEATHER["input_schema"]) in system_turn


def test_earlier_calls_and_results_are_written_as_the_model_writes_and_reads_them(smollm_tokenizer):
    prompt = render_prompt(smollm_tokenizer, request())
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>'
    assert f"<|im_start|>assistant\nChecking.\n\n{call}<|im_end|>" in prompt
    # The result leads the user turn it was sent in, marked as an error, and the turns still alternate.
    assert ('<|im_start|>user\n<tool_result tool_use_id="toolu_1" is_error="true">\ntimeout\n</tool_result>'
            '\n\nTry again?<|im_end|>') in prompt
    assert prompt.count("<|im_start|>user") == 2


def test_tool_choice_does_not_change_the_prompt(smollm_tokenizer):
    # Tools stay in the prompt whatever the choice (none included), as Anthropic does: the grammar enforces it.
    prompts = {render_prompt(smollm_tokenizer, request(tool_choice=choice))
               for choice in (ToolChoice(), ToolChoice("none"), ToolChoice("tool", name="get_weather"))}
    assert len(prompts) == 1


def test_a_template_that_renders_tools_gets_them_and_the_structured_turns(smollm_tokenizer):
    tokenizer = with_template(smollm_tokenizer, HERMES_LIKE_TEMPLATE)
    assert detect_tool_format(tokenizer) is HERMES
    prompt = render_prompt(tokenizer, request())
    tool_json = json.dumps({"type": "function", "function": {"name": "get_weather",
                                                             "description": WEATHER["description"],
                                                             "parameters": WEATHER["input_schema"]}})
    assert prompt.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n<tools>\n" + tool_json)
    assert "You can call tools" not in prompt                   # no generic instructions on top of the template's
    assert ('Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}'
            '\n</tool_call><|im_end|>') in prompt
    # A failed result says so in its text: templates have no flag for it.
    assert "<tool_response>\nError: timeout\n</tool_response>" in prompt


def test_history_with_calls_renders_without_tools_in_the_request(smollm_tokenizer):
    prompt = render_prompt(smollm_tokenizer, GenerationRequest(messages=LOOP))
    assert "<tool_call>" in prompt and "You can call tools" not in prompt


# Mistral's templates raise on any call id that is not 9 letters or digits.
MISTRAL_LIKE_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.tool_calls %}{%- for call in message.tool_calls %}"
    "{%- if call.id | length != 9 %}{{ raise_exception('Tool call IDs should be alphanumeric strings with length 9!') }}"
    "{%- endif %}{{- '[TOOL_CALLS][' + (call.function | tojson) + ']' + call.id + '</s>' }}{%- endfor %}"
    "{%- elif message.role == 'tool' %}{{- '[TOOL_RESULTS]' + message.tool_call_id + ': ' + message.content"
    " + '[/TOOL_RESULTS]' }}"
    "{%- else %}{{- '[INST]' + message.content + '[/INST]' }}{%- endif %}{%- endfor %}")


def test_call_ids_are_shortened_consistently_for_templates_that_demand_nine_characters(smollm_tokenizer):
    tokenizer = with_template(smollm_tokenizer, MISTRAL_LIKE_TEMPLATE)
    prompt = render_prompt(tokenizer, request(messages=LOOP[1:4]))
    call_id = prompt.split("</s>")[0][-9:]
    assert call_id.isalnum() and f"[TOOL_RESULTS]{call_id}: Error: timeout" in prompt
