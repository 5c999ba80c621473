"""The one rendering function: the template is the source of truth, counts agree, prefill follows the prompt."""
from __future__ import annotations

import pytest
from engine_helpers import chat

from app.engine.errors import NotReadyError, PromptError
from app.engine.model.prompt import prompt_ids, render_prompt
from app.engine.request import GenerationRequest


def test_render_is_the_chat_template_with_the_assistant_turn_opened(smollm_tokenizer):
    text = render_prompt(smollm_tokenizer, chat("Hi"))
    assert text == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                    "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_prefill_is_appended_after_the_generation_prompt(smollm_tokenizer):
    text = render_prompt(smollm_tokenizer, chat("Hi", prefill="Sure, here"))
    assert text.endswith("<|im_start|>assistant\nSure, here")


def test_special_tokens_are_not_added_twice(smollm_tokenizer):
    ids = prompt_ids(smollm_tokenizer, render_prompt(smollm_tokenizer, chat("Hi")))
    im_start = smollm_tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids[0] == im_start and ids[1] != im_start
    assert ids.count(smollm_tokenizer.eos_token_id) == 2        # system and user turns, nothing more


def test_a_template_error_is_a_prompt_error(smollm_tokenizer):
    request = GenerationRequest(messages=({"role": "user"},))                 # no content: the template fails
    with pytest.raises(PromptError, match="chat template"):
        render_prompt(smollm_tokenizer, request)


def test_engine_render_and_count_agree_with_the_ids_it_generates_from(engine, smollm_tokenizer):
    request = chat("Count me", prefill="Okay:", max_new_tokens=3)
    text = engine.render_prompt(request)
    assert text == render_prompt(smollm_tokenizer, request)
    count = engine.count_prompt_tokens(request)
    assert count == len(smollm_tokenizer(text, add_special_tokens=False)["input_ids"])
    finished = list(engine.submit(request).events())[-1]
    assert finished.usage.computed_prompt_tokens == count


def test_nothing_renders_before_the_model_is_loaded():
    from app.config import Config
    from app.engine.runtime import LocalEngine

    engine = LocalEngine(Config(), loader=lambda config: pytest.fail("must not load"))
    assert engine.model_id == "SmolLM2-135M-Instruct" and not engine.is_ready()
    for call in (engine.render_prompt, engine.count_prompt_tokens, engine.submit):
        with pytest.raises(NotReadyError):
            call(chat())
