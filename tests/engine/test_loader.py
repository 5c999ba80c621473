"""Loading: the default GGUF converted once and cached, clear errors for what cannot work, names known early."""
from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from engine_helpers import chat, final, text_of

from app.config import Config
from app.engine.model import loader
from app.engine.errors import ModelLoadError
from app.engine.events import StopReason
from app.engine.model.loader import load_model, model_id_for_gguf, resolve_source
from app.engine.runtime import LocalEngine


def forbid_loading(monkeypatch):
    def refuse(*args, **kwargs):
        pytest.fail("no weights or tokenizer may be loaded")
    for auto in (loader.AutoModelForCausalLM, loader.AutoTokenizer):
        monkeypatch.setattr(auto, "from_pretrained", refuse)


def test_quantization_is_the_same_bitsandbytes_config_on_cpu_as_on_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    forbid_loading(monkeypatch)
    loader.preflight(Config(quantize="4bit"))              # no CUDA needed
    nf4 = loader.quantization_config("4bit", torch.float32)
    assert nf4.load_in_4bit and nf4.bnb_4bit_quant_type == "nf4" and nf4.bnb_4bit_compute_dtype == torch.float32
    assert not nf4.llm_int8_enable_fp32_cpu_offload
    assert loader.quantization_config("8bit").load_in_8bit
    assert loader.quantization_config("none") is None
    with pytest.raises(ModelLoadError, match="unknown --quantize '2bit'"):
        loader.quantization_config("2bit")


def test_quantize_without_bitsandbytes_fails_clearly_before_loading_anything(monkeypatch):
    forbid_loading(monkeypatch)
    find_spec = loader.importlib.util.find_spec
    monkeypatch.setattr(loader.importlib.util, "find_spec",
                        lambda name, *args: None if name == "bitsandbytes" else find_spec(name, *args))
    with pytest.raises(ModelLoadError, match="--quantize 8bit needs the bitsandbytes package"):
        load_model(Config(quantize="8bit"))


def test_engine_records_a_load_error_and_stays_not_ready(monkeypatch, tmp_path):
    forbid_loading(monkeypatch)
    engine = LocalEngine(Config(model=str(tmp_path / "missing.gguf")))
    with pytest.raises(ModelLoadError, match="GGUF file not found"):
        engine.load()
    assert not engine.is_ready() and "GGUF file not found" in engine.load_error()
    assert engine.model_id == "missing"


def test_a_hub_id_that_cannot_be_fetched_is_a_clear_load_error(monkeypatch, tmp_path):
    # Offline mode makes the hub fail at once instead of retrying a missing network for a minute.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match=r"(?s)Hugging Face hub.*pass a local model directory or a .gguf file"):
        load_model(Config(model="no-such-org/no-such-model", data_dir=str(tmp_path)))


def test_model_ids_are_known_from_the_spec_alone(tmp_path):
    assert resolve_source("").model_id == "SmolLM2-135M-Instruct"
    assert model_id_for_gguf(Path("Qwen3-8B-Q4_K_M.gguf")) == "Qwen3-8B"
    assert resolve_source(str(tmp_path)).model_id == tmp_path.name
    assert resolve_source("HuggingFaceTB/SmolLM2-135M-Instruct").model_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    with pytest.raises(ModelLoadError, match="not found"):
        resolve_source("./no/such/dir")


def test_default_model_is_converted_once_then_loaded_from_the_cache(tmp_path, monkeypatch):
    """The real path on the real default model: first start converts the GGUF, the second reuses the safetensors."""
    config = Config(data_dir=str(tmp_path))
    engine = LocalEngine(config)
    engine.load()
    try:
        assert engine.is_ready() and engine.model_id == "SmolLM2-135M-Instruct"
        assert engine.context_window == 8192
        events = list(engine.submit(chat("Say hello.", max_new_tokens=40)).events())
    finally:
        engine.close()
    finished = final(events)
    assert text_of(events).strip()
    if finished.stop_reason is StopReason.END:          # the model closed its turn: <|im_end|> counts as output
        assert finished.usage.output_tokens >= 2

    converted = list((tmp_path / "converted").iterdir())
    assert [path.name.rsplit("-", 1)[0] for path in converted] == ["SmolLM2-135M-Instruct.Q4_1"]  # no temp left
    assert {"model.safetensors", "tokenizer.json", "config.json"} <= {p.name for p in converted[0].iterdir()}

    def no_second_conversion(*args):
        pytest.fail("the cached conversion should have been used")
    monkeypatch.setattr(loader, "_convert_gguf", no_second_conversion)
    again = LocalEngine(config)
    again.load()
    again.close()
    assert again.is_ready() and again.context_window == 8192


def test_preflight_checks_settings_without_loading(monkeypatch, tmp_path):
    forbid_loading(monkeypatch)
    loader.preflight(Config())                                  # the default model is installed: fine
    loader.preflight(Config(model=str(tmp_path)))
    with pytest.raises(ModelLoadError, match="GGUF file not found"):
        loader.preflight(Config(model=str(tmp_path / "nope.gguf")))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelLoadError, match="needs a CUDA GPU"):
        loader.preflight(Config(quantize="8bit", device_map="auto"))
    with pytest.raises(ModelLoadError, match="no CUDA GPU"):
        loader.preflight(Config(device="cuda"))
