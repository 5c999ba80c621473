"""--quantize 4bit|8bit through bitsandbytes on CPU (its CPU backend, bitsandbytes 0.50): a tiny random Llama saved
to disk and loaded by the loader as a user's model directory would be, then served by the real engine; and the real
default model (its GGUF converted, then quantized) answering in 4-bit."""
from __future__ import annotations

import bitsandbytes as bnb
import pytest
import torch
from engine_helpers import answers, chat, final, greedy_ids, text_of

from app.config import Config
from app.engine.events import Finished
from app.engine.model.loader import load_model

LINEAR_CLASS = {"4bit": bnb.nn.Linear4bit, "8bit": bnb.nn.Linear8bitLt}

REQUESTS = [
    chat("Hi!", max_new_tokens=6),
    chat("What is the capital of France?", max_new_tokens=14),
    chat("Write a haiku about the sea. " * 3, max_new_tokens=9),
    chat("Count from one to ten in words, please, and slowly.", max_new_tokens=20),
    chat("List three fruits.", max_new_tokens=11),
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tiny_model, smollm_tokenizer):
    """The tiny random Llama as a model directory on disk (safetensors, config, tokenizer)."""
    directory = tmp_path_factory.mktemp("tiny-llama")
    tiny_model.save_pretrained(directory)
    smollm_tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module", params=["4bit", "8bit"])
def quantized(request, tiny_dir, tmp_path_factory):
    loaded = load_model(Config(model=str(tiny_dir), device="cpu", quantize=request.param,
                               data_dir=str(tmp_path_factory.mktemp("data"))))
    return request.param, loaded


def test_every_linear_layer_of_the_decoder_is_a_bitsandbytes_layer(quantized):
    quantize, loaded = quantized
    linears = {name: module for name, module in loaded.model.named_modules()
               if isinstance(module, torch.nn.Linear) and ".layers." in name}
    assert len(linears) == 2 * 7                       # q, k, v, o, gate, up, down in each of the 2 layers
    assert all(isinstance(module, LINEAR_CLASS[quantize]) for module in linears.values())
    assert loaded.device == torch.device("cpu")


def test_greedy_output_is_the_same_on_every_run(quantized):
    _, loaded = quantized
    first = greedy_ids(loaded)
    assert len(first) == 16 and greedy_ids(loaded) == first


def test_the_weights_take_less_memory_than_float32(quantized, tiny_model):
    quantize, loaded = quantized

    def layer_weight_bytes(model) -> int:
        return sum(p.numel() * p.element_size() for name, p in model.named_parameters() if ".layers." in name)

    # NF4 packs two weights a byte, LLM.int8() one; norms and the embeddings stay float32 (their share is large in
    # a tiny model, so the whole footprint shrinks less).
    assert layer_weight_bytes(loaded.model) < layer_weight_bytes(tiny_model) / {"4bit": 6, "8bit": 3}[quantize]
    assert loaded.model.get_memory_footprint() < tiny_model.get_memory_footprint()


def test_batched_output_in_the_engine(quantized, make_engine):
    """4-bit: each request's greedy output is the same batched as alone. 8-bit: LLM.int8() computes in float16 the
    input columns where any row of the batch holds an outlier (|x| > 6), so a row can round differently in company
    (on the default model, one answer of five changed a word); here the batch must still be served in full."""
    quantize, loaded = quantized
    engine = make_engine(loaded=loaded)
    alone = answers(engine, REQUESTS, together=False)
    together = answers(engine, REQUESTS, together=True)
    assert all(text for text, _, _ in alone + together)
    if quantize == "4bit":
        assert together == alone
    else:
        assert [tokens for _, _, tokens in together] == [tokens for _, _, tokens in alone]


def test_the_default_model_serves_in_4bit(make_engine):
    """The embedded GGUF, converted to safetensors as for any start (shared with the other tests' cache), then
    quantized to NF4 on load: a real model answers through the engine."""
    loaded = load_model(Config(device="cpu", quantize="4bit"))
    assert isinstance(loaded.model.model.layers[0].mlp.down_proj, bnb.nn.Linear4bit)
    engine = make_engine(loaded=loaded, context_window=512)      # a short window: a small KV allocation
    events = list(engine.submit(chat("What is the capital of France?", max_new_tokens=12)).events(timeout=120))
    assert isinstance(final(events), Finished)
    assert text_of(events).strip()
