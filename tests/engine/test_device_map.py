"""--device-map auto / --max-memory: accelerate's big-model placement, tested on CPU with disk offload. A tiny Llama
whose layers are large enough to be placed one by one is saved to disk, loaded with a RAM limit that holds the
embeddings and the first layer, and must produce the single-device model's greedy output token for token, through
model.generate and through the engine's step loop."""
from __future__ import annotations

import pytest
import torch
from engine_helpers import answers, chat, greedy_ids
from transformers import LlamaConfig, LlamaForCausalLM

from app.config import Config
from app.engine.errors import ModelLoadError
from app.engine.model import loader
from app.engine.model.loader import load_model
from app.engine.model.placement import parse_max_memory

CPU = torch.device("cpu")
# With this model (embeddings and head 12 MB each, 4 layers of 3.2 MB): the embeddings and layer 0 in RAM, the rest
# on disk. accelerate keeps room for the largest module (the head) on the execution device, hence not 12 + 3 MB.
RAM_LIMIT = "cpu=30MiB"

REQUESTS = [
    chat("Hi!", max_new_tokens=6),
    chat("What is the capital of France?", max_new_tokens=12),
    chat("Write a haiku about the sea. " * 3, max_new_tokens=8),
    chat("List three fruits.", max_new_tokens=10),
]


@pytest.fixture(scope="module")
def wide_dir(tmp_path_factory, smollm_tokenizer):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(smollm_tokenizer), hidden_size=64, intermediate_size=4096,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=8192, bos_token_id=smollm_tokenizer.bos_token_id,
                         eos_token_id=smollm_tokenizer.eos_token_id, pad_token_id=smollm_tokenizer.pad_token_id,
                         tie_word_embeddings=False)
    directory = tmp_path_factory.mktemp("wide-llama")
    LlamaForCausalLM(config).save_pretrained(directory)
    smollm_tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def single(wide_dir, tmp_path_factory):
    return load_model(Config(model=str(wide_dir), device="cpu", data_dir=str(tmp_path_factory.mktemp("data"))))


@pytest.fixture(scope="module")
def offload_data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("offload-data")


@pytest.fixture(scope="module")
def offloaded(wide_dir, offload_data_dir):
    return load_model(Config(model=str(wide_dir), device_map="auto", max_memory=RAM_LIMIT,
                             data_dir=str(offload_data_dir)))


def test_a_ram_limit_offloads_the_later_layers_to_disk(offloaded, wide_dir, offload_data_dir):
    placed = offloaded.model.hf_device_map
    assert placed["model.embed_tokens"] == "cpu" and placed["model.layers.0"] == "cpu"
    assert {placed[f"model.layers.{i}"] for i in (1, 2, 3)} == {placed["lm_head"]} == {"disk"}
    assert offloaded.model.model.layers[3].mlp.down_proj.weight.device.type == "meta"     # not in memory
    assert offloaded.device == CPU                 # where the embeddings run, so where input ids go
    assert (offload_data_dir / "offload" / wide_dir.name).is_dir()


def test_greedy_generate_is_the_single_device_output_token_for_token(offloaded, single):
    for text in ("Tell me a story.", "What is 2 + 2?"):
        expected = greedy_ids(single, text, 20)
        assert greedy_ids(offloaded, text, 20) == expected and len(expected) == 20


def test_the_engine_serves_the_offloaded_model_as_the_single_device_one(offloaded, single, make_engine):
    reference = answers(make_engine(loaded=single), REQUESTS, together=False)
    engine = make_engine(loaded=offloaded)
    assert answers(engine, REQUESTS, together=True) == reference          # batched, from a cold cache
    assert answers(engine, REQUESTS, together=False) == reference         # alone, prompts from the prefix cache
    assert all(text for text, _, _ in reference)


@pytest.mark.parametrize("text, expected", [
    ("cpu=64GiB", {"cpu": 64 * 2**30}),
    ("cpu=512MiB", {"cpu": 512 * 2**20}),
    (" cpu = 1.5GB ", {"cpu": 1_500_000_000}),
    ("cpu=1000", {"cpu": 1000}),
    ("CPU=2kib,", {"cpu": 2048}),
])
def test_max_memory_is_parsed_into_accelerate_limits(text, expected):
    assert parse_max_memory(text, CPU) == expected


def test_gpus_are_named_by_index_or_cuda_n(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert parse_max_memory("0=20GiB,cuda:1=10GiB,cpu=30GiB", torch.device("cuda")) == {
        0: 20 * 2**30, 1: 10 * 2**30, "cpu": 30 * 2**30}
    with pytest.raises(ModelLoadError, match=r"'2=1GiB' names GPU 2, but 2 GPU\(s\) were found"):
        parse_max_memory("0=1GiB,2=1GiB", torch.device("cuda"))


@pytest.mark.parametrize("text, message", [
    ("cpu", r"--max-memory: 'cpu' is not DEVICE=SIZE"),
    ("cpu=", r"--max-memory: 'cpu=' is not DEVICE=SIZE"),
    ("cpu=lots", r"--max-memory: 'cpu=lots': 'lots' is not a size"),
    ("cpu=20 GiBs", r"'20 GiBs' is not a size"),
    ("ram=20GiB", r"--max-memory: 'ram=20GiB': 'ram' is not a device; use a GPU index"),
    ("cpu=1GiB,cpu=2GiB", r"'cpu=2GiB' names cpu a second time"),
    ("0=20GiB", r"--max-memory: '0=20GiB' names a GPU, but the model runs on cpu"),
    (",", r"names no device"),
])
def test_a_bad_max_memory_names_the_part_that_is_wrong(text, message):
    with pytest.raises(ModelLoadError, match=message):
        parse_max_memory(text, CPU)


def forbid_loading(monkeypatch):
    def refuse(*args, **kwargs):
        pytest.fail("no weights or tokenizer may be loaded")
    for auto in (loader.AutoModelForCausalLM, loader.AutoTokenizer):
        monkeypatch.setattr(auto, "from_pretrained", refuse)


def test_settings_that_cannot_place_fail_before_loading(monkeypatch, tmp_path):
    forbid_loading(monkeypatch)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loader.preflight(Config(model=str(tmp_path), device_map="auto", max_memory="cpu=1GiB"))     # fine
    with pytest.raises(ModelLoadError, match="--max-memory limits what --device-map auto places.*add "
                                             "--device-map auto"):
        loader.preflight(Config(model=str(tmp_path), max_memory="cpu=1GiB"))
    with pytest.raises(ModelLoadError, match="'x=1': 'x' is not a device"):
        load_model(Config(model=str(tmp_path), device_map="auto", max_memory="x=1"))
    with pytest.raises(ModelLoadError, match="--quantize 4bit with --device-map auto needs a CUDA GPU"):
        loader.preflight(Config(model=str(tmp_path), device_map="auto", quantize="4bit"))
