"""Where a model's weights go: all of it on `--device`, or, with `--device-map auto`, spread by accelerate's
big-model placement (transformers' `from_pretrained(device_map="auto", max_memory=..., offload_folder=...)`):
layers fill the GPUs, then CPU RAM, then disk, within `--max-memory`; offloaded layers are moved to the execution
device by accelerate's hooks at each forward. The step loop puts input ids where the input embeddings execute.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ...config import Config
from ..errors import ModelLoadError

# --max-memory sizes: a number and an optional unit (no unit: bytes). KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024.
MEMORY_SIZE = re.compile(r"(\d+(?:\.\d*)?)\s*([KMGT]i?B|B)?", re.IGNORECASE)
MEMORY_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
                "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}

@dataclass(frozen=True)
class Placement:
    """Where the weights go: `device_map` as transformers takes it ({"": device}, or "auto" with `max_memory` and
    `offload_folder`)."""
    device_map: Any
    max_memory: dict | None = None
    offload_folder: str | None = None

    @property
    def spread(self) -> bool:
        return self.device_map == "auto"


def plan_placement(config: Config, device: torch.device, model_id: str) -> Placement:
    """Where the weights go (see the module's docstring). Raises ModelLoadError for a bad --max-memory."""
    if config.device_map == "none":
        if config.max_memory:
            raise ModelLoadError("--max-memory limits what --device-map auto places on each device; add "
                                 "--device-map auto (or drop --max-memory)")
        return Placement(device_map={"": str(device)})
    if config.device_map != "auto":
        raise ModelLoadError(f"unknown --device-map {config.device_map!r}: expected none or auto")
    max_memory = parse_max_memory(config.max_memory, device) if config.max_memory else None
    folder = Path(config.data_dir) / "offload" / re.sub(r"[^\w.-]+", "_", model_id)
    return Placement(device_map="auto", max_memory=max_memory, offload_folder=str(folder))


def parse_max_memory(text: str, device: torch.device) -> dict[int | str, int]:
    """'0=20GiB,1=20GiB,cpu=64GiB' (a GPU as its index or cuda:N) → {0: bytes, 1: bytes, "cpu": bytes}, as
    accelerate takes it. Raises ModelLoadError naming the part that is wrong."""
    limits: dict[int | str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, equals, size = (s.strip() for s in part.partition("="))
        if not equals or not name or not size:
            raise ModelLoadError(f"--max-memory: {part!r} is not DEVICE=SIZE (e.g. 0=20GiB or cpu=64GiB)")
        key = _memory_device(name.lower(), part, device)
        if key in limits:
            raise ModelLoadError(f"--max-memory: {part!r} names {name} a second time")
        matched = MEMORY_SIZE.fullmatch(size)
        if not matched:
            raise ModelLoadError(f"--max-memory: {part!r}: {size!r} is not a size (e.g. 512MiB, 20GiB, 20GB)")
        limits[key] = int(float(matched.group(1)) * MEMORY_UNITS[(matched.group(2) or "b").lower()])
    if not limits:
        raise ModelLoadError(f"--max-memory {text!r} names no device (e.g. 0=20GiB,cpu=64GiB)")
    return limits


def _memory_device(name: str, part: str, device: torch.device) -> int | str:
    if name == "cpu":
        return "cpu"
    index = name.removeprefix("cuda:") if name.startswith("cuda:") else name
    if not index.isdigit():
        raise ModelLoadError(f"--max-memory: {part!r}: {name!r} is not a device; use a GPU index (0, 1, ...), "
                             "cuda:N, or cpu")
    if device.type != "cuda":
        raise ModelLoadError(f"--max-memory: {part!r} names a GPU, but the model runs on {device.type} "
                             "(--device); name only cpu")
    if int(index) >= torch.cuda.device_count():
        raise ModelLoadError(f"--max-memory: {part!r} names GPU {index}, but {torch.cuda.device_count()} "
                             "GPU(s) were found")
    return int(index)


def default_max_memory(device: torch.device) -> dict | None:
    """Without --max-memory accelerate uses every GPU's free memory and the free RAM; under --device cpu (on a
    machine that has a GPU), RAM only."""
    if device.type == "cuda":
        return None
    from accelerate.utils import get_max_memory
    return {"cpu": get_max_memory()["cpu"]}


def input_device_of(model, fallback: torch.device) -> torch.device:
    """Where input ids must go for a model placed by accelerate: where its input embeddings execute (the module's
    hook says so when its weights are offloaded; otherwise they are where its weights are)."""
    embeddings = model.get_input_embeddings()
    executes_on = getattr(getattr(embeddings, "_hf_hook", None), "execution_device", None)
    if executes_on is not None:
        return torch.device(executes_on)       # an int is a CUDA index: torch.device(0) is cuda:0
    weight = getattr(embeddings, "weight", None)
    if weight is not None and weight.device.type != "meta":
        return weight.device
    return fallback


def placement_summary(model) -> str:
    placed = getattr(model, "hf_device_map", None) or {}
    counts: dict[str, int] = {}
    for where in placed.values():
        name = f"cuda:{where}" if isinstance(where, int) else str(where)
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{count} module(s) on {name}" for name, count in counts.items()) or "one device"
