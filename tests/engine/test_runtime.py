"""LocalEngine's life cycle: built without loading, loads in the background, reports failure, honours the
Engine protocol the api layer codes against."""
from __future__ import annotations

import threading
import time

import pytest
from engine_helpers import chat, final

from app.config import Config
from app.engine.errors import ModelLoadError, NotReadyError
from app.engine.events import StopReason
from app.engine.interface import Engine, GenerationHandle
from app.engine.model.loader import wrap_loaded_model
from app.engine.runtime import LocalEngine
from app.engine.scheduler.forward import PoolRunner


def protocol_members(protocol) -> set[str]:
    return {name for name in dir(protocol) if not name.startswith("_")} | set(protocol.__annotations__)


def test_local_engine_has_every_member_of_the_engine_protocol(engine):
    assert protocol_members(Engine) <= set(dir(engine))
    assert protocol_members(GenerationHandle) <= set(dir(engine.submit(chat(max_new_tokens=1))))
    assert engine.accepts_images is False


def test_start_loading_returns_at_once_and_serves_once_loaded(smollm_tokenizer, tiny_model):
    release = threading.Event()

    def slow_loader(config):
        assert release.wait(30)
        return wrap_loaded_model(tiny_model, smollm_tokenizer, "tiny-llama")

    engine = LocalEngine(Config(model="/models/My-Model-Q8_0.gguf"), loader=slow_loader)
    engine.start_loading()
    engine.start_loading()                               # idempotent
    try:
        assert not engine.is_ready() and engine.load_error() is None
        assert engine.model_id == "My-Model"                 # known before the weights are
        with pytest.raises(NotReadyError, match="still loading"):
            engine.submit(chat())
        release.set()
        engine.load()                                    # waits for the background load, then returns
        assert engine.is_ready() and engine.model_id == "tiny-llama" and engine.context_window == 8192
        assert final(list(engine.submit(chat(max_new_tokens=2)).events())).stop_reason is StopReason.LENGTH
    finally:
        release.set()
        engine.close()


def test_a_failed_background_load_is_reported():
    def broken_loader(config):
        raise ModelLoadError("--device cuda was asked for but no CUDA GPU was found")

    engine = LocalEngine(Config(), loader=broken_loader)
    engine.start_loading()
    deadline = time.monotonic() + 10
    while engine.load_error() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not engine.is_ready()
    assert engine.load_error() == "--device cuda was asked for but no CUDA GPU was found"
    with pytest.raises(NotReadyError, match="failed to load: --device cuda was asked for"):
        engine.count_prompt_tokens(chat())


def test_an_unexpected_loader_exception_becomes_a_model_load_error():
    engine = LocalEngine(Config(), loader=lambda config: 1 / 0)
    with pytest.raises(ModelLoadError, match="ZeroDivisionError"):
        engine.load()
    assert "ZeroDivisionError" in engine.load_error()


def test_a_decode_step_that_fails_to_compile_is_a_load_error_that_says_so(make_engine, monkeypatch):
    def fail(runner):
        raise RuntimeError("inductor could not compile")
    monkeypatch.setattr(PoolRunner, "warm_up", fail)
    with pytest.raises(ModelLoadError, match="warming up the decode step failed: RuntimeError: inductor could not"):
        make_engine(compile=True)


def test_a_kv_budget_too_small_for_one_row_is_a_load_error_that_says_so(make_engine):
    with pytest.raises(ModelLoadError, match="raise --kv-budget-mb"):
        make_engine(kv_budget_mb=1, context_window=100_000)
