"""Thinking-profile detection from the chat template and tokenizer, and the CLI override."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from engine_helpers import DEEPSEEK_R1_LIKE_TEMPLATE, QWEN3_LIKE_TEMPLATE, with_template

from app.config import Config
from app.engine.errors import ModelLoadError
from app.engine.model.loader import wrap_loaded_model
from app.engine.model.profiles import (DEFAULT_TRANSITION, PROMPTED, TEMPLATE_FLAG, TEMPLATE_OPENS, detect_profile,
                                 profile_for)
from app.engine.runtime import LocalEngine
from app.engine.thinking.close import minimum_thinking_budget, single_token_id


def test_smollm2_chatml_has_no_native_thinking_so_it_is_prompted(smollm_tokenizer):
    profile = detect_profile(smollm_tokenizer)
    assert (profile.name, profile.switch) == ("prompted", PROMPTED) and profile.prompted
    assert (profile.open_marker, profile.close_marker) == ("<think>", "</think>")
    # Plain text for SmolLM2: "</", "think", ">".
    assert single_token_id(smollm_tokenizer, "</think>") is None
    assert minimum_thinking_budget(smollm_tokenizer, "</think>") == 3


def test_a_template_with_enable_thinking_is_qwen3_like(native_thinking_tokenizer):
    profile = detect_profile(native_thinking_tokenizer)
    assert (profile.name, profile.switch) == ("qwen3", TEMPLATE_FLAG)
    assert single_token_id(native_thinking_tokenizer, "</think>") is not None
    assert minimum_thinking_budget(native_thinking_tokenizer, "</think>") == 1


def test_a_generation_prompt_that_opens_think_is_deepseek_r1_like(smollm_tokenizer):
    profile = detect_profile(with_template(smollm_tokenizer, DEEPSEEK_R1_LIKE_TEMPLATE))
    assert (profile.name, profile.switch) == ("deepseek-r1", TEMPLATE_OPENS)


@pytest.mark.parametrize("template", [None, "{{ raise_exception('no') }}"])
def test_no_template_or_a_refusing_one_falls_back_to_prompted(smollm_tokenizer, template):
    assert detect_profile(with_template(smollm_tokenizer, template)).name == "prompted"


@pytest.mark.parametrize("name", ["qwen3", "deepseek-r1", "prompted"])
def test_the_override_wins_over_detection(smollm_tokenizer, name):
    assert detect_profile(with_template(smollm_tokenizer, QWEN3_LIKE_TEMPLATE), name).name == name


def test_an_unknown_override_is_refused(smollm_tokenizer):
    with pytest.raises(ValueError, match="unknown thinking profile"):
        detect_profile(smollm_tokenizer, "o1")


def test_server_settings_pick_profile_and_transition_and_default_to_auto(smollm_tokenizer):
    assert profile_for(smollm_tokenizer, SimpleNamespace()).transition == DEFAULT_TRANSITION
    configured = profile_for(smollm_tokenizer, SimpleNamespace(thinking_profile="qwen3", thinking_transition="Ok.\n"))
    assert (configured.name, configured.transition) == ("qwen3", "Ok.\n")


def test_the_engine_detects_its_profile_when_it_loads_and_refuses_an_unknown_one(smollm_tokenizer, tiny_model):
    def loader(config):
        return wrap_loaded_model(tiny_model, smollm_tokenizer, "tiny-llama")

    engine = LocalEngine(Config(), loader=loader)
    assert engine.thinking_profile is None
    engine.load()
    try:
        assert engine.thinking_profile.name == "prompted"
    finally:
        engine.close()
    # Past the CLI's choices (a notebook builds its own Config): refused when the model loads.
    refused = LocalEngine(dataclasses.replace(Config(), thinking_profile="o1"), loader=loader)
    with pytest.raises(ModelLoadError, match="unknown thinking profile"):
        refused.load()
    assert "unknown thinking profile" in refused.load_error()
