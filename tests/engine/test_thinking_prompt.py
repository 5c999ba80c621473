"""Rendering with thinking on and off, for each way of switching it, and earlier reasoning sent back."""
from __future__ import annotations

from engine_helpers import DEEPSEEK_R1_LIKE_TEMPLATE, chat, with_template

from app.engine.model.profiles import KNOWN_PROFILES, detect_profile
from app.engine.model.prompt import THINKING_INSTRUCTION, prompt_ids, render_prompt
from app.engine.request import GenerationRequest, ThinkingSettings

THINK = ThinkingSettings(budget_tokens=64)
INSTRUCTION = THINKING_INSTRUCTION.format(open="<think>", close="</think>")
SMOLLM_PERSONA = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
TOOL_LOOP = ({"role": "user", "content": "Weather?"},
             {"role": "assistant", "content": "<tool_call>get</tool_call>", "reasoning_content": "\nI need a tool.\n"},
             {"role": "user", "content": "<tool_result>sunny</tool_result>"})


def test_prompted_thinking_opens_the_section_and_explains_the_markers(smollm_tokenizer):
    text = render_prompt(smollm_tokenizer, chat("Hi", thinking=THINK))
    assert text == (f"<|im_start|>system\n{INSTRUCTION}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                    "<|im_start|>assistant\n<think>\n")


def test_prompted_instruction_joins_an_existing_system_prompt(smollm_tokenizer):
    request = GenerationRequest(messages=({"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "Hi"}), thinking=THINK)
    assert render_prompt(smollm_tokenizer, request).startswith(f"<|im_start|>system\nBe brief.\n\n{INSTRUCTION}<|im_end|>")


def test_prompted_thinking_off_renders_the_template_untouched(smollm_tokenizer):
    assert render_prompt(smollm_tokenizer, chat("Hi")) == (
        f"<|im_start|>system\n{SMOLLM_PERSONA}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_qwen3_like_templates_get_enable_thinking(native_thinking_tokenizer):
    on = render_prompt(native_thinking_tokenizer, chat("Hi", thinking=THINK))
    off = render_prompt(native_thinking_tokenizer, chat("Hi"))
    assert on.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n")
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")    # the template's own empty section
    assert "Think before you answer" not in on                              # native: no instruction
    think, close = (native_thinking_tokenizer.convert_tokens_to_ids(t) for t in ("<think>", "</think>"))
    assert prompt_ids(native_thinking_tokenizer, on)[-2] == think          # the native token, not its spelling
    assert close in prompt_ids(native_thinking_tokenizer, off)


def test_a_template_that_opens_thinking_is_left_open_or_closed_empty(smollm_tokenizer):
    tokenizer = with_template(smollm_tokenizer, DEEPSEEK_R1_LIKE_TEMPLATE)
    on = render_prompt(tokenizer, chat("Hi", thinking=THINK))
    off = render_prompt(tokenizer, chat("Hi"))
    assert on.endswith("<|im_start|>assistant\n<think>\n") and on.count("<think>") == 1
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_an_explicit_profile_is_used_as_given(smollm_tokenizer):
    text = render_prompt(smollm_tokenizer, chat("Hi", thinking=THINK), KNOWN_PROFILES["deepseek-r1"])
    assert text.endswith("<|im_start|>assistant\n<think>\n") and INSTRUCTION not in text


def test_a_budget_too_small_for_the_closing_marker_closes_the_section_in_the_prompt(smollm_tokenizer,
                                                                                    native_thinking_tokenizer):
    # SmolLM2 spells "</think>" in 3 tokens: a budget of 2 cannot hold it, so the model gets no room to think.
    tiny = render_prompt(smollm_tokenizer, chat("Hi", thinking=ThinkingSettings(budget_tokens=2)))
    assert tiny.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert render_prompt(smollm_tokenizer, chat("Hi", thinking=ThinkingSettings(budget_tokens=3))).endswith(
        "<think>\n")
    # A native marker is one token: a budget of 1 is enough.
    assert render_prompt(native_thinking_tokenizer, chat("Hi", thinking=ThinkingSettings(budget_tokens=1))).endswith(
        "<think>\n")


def test_earlier_reasoning_is_written_into_the_turn_for_templates_that_cannot_take_it(smollm_tokenizer):
    text = render_prompt(smollm_tokenizer, GenerationRequest(messages=TOOL_LOOP, thinking=THINK))
    assert ("<|im_start|>assistant\n<think>\nI need a tool.\n</think>\n\n<tool_call>get</tool_call><|im_end|>"
            in text)
    # Without thinking the turn still shows what the model reasoned before calling the tool.
    assert "<think>\nI need a tool.\n</think>" in render_prompt(smollm_tokenizer, GenerationRequest(messages=TOOL_LOOP))


def test_earlier_reasoning_goes_to_templates_that_render_it(native_thinking_tokenizer):
    text = render_prompt(native_thinking_tokenizer, GenerationRequest(messages=TOOL_LOOP, thinking=THINK))
    # The template wrote it (its own layout); the engine did not also put it into the content.
    assert text.count("I need a tool.") == 1
    assert "<|im_start|>assistant\n<think>\nI need a tool.\n</think>\n\n<tool_call>get</tool_call>" in text


def test_the_profile_is_detected_when_not_given(native_thinking_tokenizer):
    request = chat("Hi", thinking=THINK)
    profile = detect_profile(native_thinking_tokenizer)
    assert render_prompt(native_thinking_tokenizer, request) == render_prompt(native_thinking_tokenizer, request,
                                                                              profile)
