"""Single-stream greedy decode tokens/s of the default model: float32 vs bitsandbytes 4-bit (NF4) vs 8-bit, and
float32 with most layers offloaded to disk (--device-map auto with a small --max-memory), side by side in one run.

Every variant is loaded the way the server loads it (`load_model`), on --device (default cpu), with the server's
torch thread count. Rounds go through the variants in turn so machine noise hits all alike; each figure is
generated tokens / wall seconds of one `model.generate()` call (a short prompt, then --max-tokens greedy tokens),
and the medians are printed with their ratio to float32, next to each model's weight memory.
Run: python bench/quantize_offload.py [--rounds 5] [--max-tokens 64] [--device cpu] [--variants fp32,4bit,8bit,disk]
"""
import argparse
import dataclasses
import statistics
import time

import torch

from app.config import Config
from app.engine.model.loader import load_model
from app.engine.model.prompt import prompt_ids, render_prompt
from app.engine.request import GenerationRequest
from app.engine.runtime import default_torch_threads

MESSAGES = ({"role": "user", "content": "Count from 1 to 2000, separated by commas."},)


def variants(base: Config) -> dict[str, Config]:
    return {
        "fp32": base,
        "4bit": dataclasses.replace(base, quantize="4bit"),
        "8bit": dataclasses.replace(base, quantize="8bit"),
        # 160 MiB of RAM holds the embeddings and a few layers; the rest is read from disk at every forward.
        "disk": dataclasses.replace(base, device_map="auto", max_memory="cpu=160MiB"),
    }


def resident_bytes(model) -> int:
    """Bytes of weights and buffers held in memory (an offloaded parameter sits on the meta device)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors if t.device.type != "meta")


def one_round(loaded, ids: list[int], max_tokens: int) -> tuple[int, float]:
    input_ids = torch.tensor([ids], device=loaded.device)
    started = time.perf_counter()
    output = loaded.model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_tokens,
                                   min_new_tokens=max_tokens, do_sample=False,
                                   pad_token_id=loaded.tokenizer.pad_token_id)
    return output.shape[1] - len(ids), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", default="fp32,4bit,8bit,disk")
    args = parser.parse_args()

    torch.set_num_threads(default_torch_threads())
    configs = variants(Config(device=args.device))
    models = {name: load_model(configs[name]) for name in args.variants.split(",")}
    any_loaded = next(iter(models.values()))
    ids = prompt_ids(any_loaded.tokenizer, render_prompt(any_loaded.tokenizer, GenerationRequest(messages=MESSAGES)))
    rates: dict[str, list[float]] = {name: [] for name in models}
    for loaded in models.values():
        one_round(loaded, ids, 4)                          # warm-up
    for round_index in range(args.rounds):
        line = []
        for name, loaded in models.items():
            tokens, seconds = one_round(loaded, ids, args.max_tokens)
            rates[name].append(tokens / seconds)
            line.append(f"{name} {rates[name][-1]:.1f}")
        print(f"round {round_index + 1} (tok/s): " + " | ".join(line), flush=True)
    reference = statistics.median(rates["fp32"]) if "fp32" in rates else None
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, {args.max_tokens} tokens, "
          f"median of {args.rounds} rounds:")
    for name, loaded in models.items():
        median = statistics.median(rates[name])
        ratio = f", {median / reference:.2f}x fp32" if reference else ""
        placed = getattr(loaded.model, "hf_device_map", None)
        where = (f", {sum(1 for d in placed.values() if d == 'disk')}/{len(placed)} modules on disk"
                 if placed else "")
        print(f"  {name:5s} {median:6.1f} tok/s{ratio}; weights in memory {resident_bytes(loaded.model) / 2**20:.0f} "
              f"MiB{where}")


if __name__ == "__main__":
    main()
