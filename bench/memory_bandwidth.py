"""What bounds one stream's decode on this machine: the memory bandwidth a torch thread gets, against the bytes the
default model reads per token.

Each decode step reads every weight once (a tied input embedding only once, as the head), so one stream's ceiling
is bandwidth / weight bytes. The probe reads a 1 GiB float32 tensor (`sum`, read-bound) and copies one (read +
write), with the same thread count the server uses, then runs one greedy stream of the default model through the
engine and prints tok/s × bytes per token as a fraction of the measured read bandwidth.

Run: python bench/memory_bandwidth.py [--threads 1] [--tokens 96]
"""
from __future__ import annotations

import argparse
import time

import torch

from app.config import Config
from app.engine.events import Finished
from app.engine.model.loader import load_model
from app.engine.request import GenerationRequest, Sampling
from app.engine.runtime import LocalEngine

GIB = 2**30


def read_bandwidth(rounds: int = 5) -> tuple[float, float]:
    """(read GB/s, copy GB/s counting read + write), best of `rounds`."""
    source = torch.ones(GIB // 4)
    target = torch.empty_like(source)
    reads, copies = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        source.sum()
        reads.append(GIB / (time.perf_counter() - started) / 1e9)
        started = time.perf_counter()
        target.copy_(source)
        copies.append(2 * GIB / (time.perf_counter() - started) / 1e9)
    return max(reads), max(copies)


def weight_bytes(model) -> int:
    """Bytes of weights a decode step reads: every parameter once (shared tensors counted once)."""
    seen, total = set(), 0
    for parameter in model.parameters():
        if parameter.data_ptr() not in seen:
            seen.add(parameter.data_ptr())
            total += parameter.numel() * parameter.element_size()
    return total


def one_stream_rate(engine: LocalEngine, tokens: int) -> float:
    handle = engine.submit(GenerationRequest(
        messages=({"role": "user", "content": "Count from 1 to 5000, separated by commas."},),
        max_new_tokens=tokens, sampling=Sampling(temperature=0)))
    handle.next_event(timeout=600)
    started = time.perf_counter()
    finished = [e for e in handle.events(timeout=600) if isinstance(e, Finished)][0]
    return (finished.usage.output_tokens - 1) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=96)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    read, copy = read_bandwidth()
    loaded = load_model(Config(device="cpu"))
    engine = LocalEngine(Config(torch_threads=args.threads), loader=lambda config: loaded)
    engine.load()
    rate = one_stream_rate(engine, args.tokens)
    engine.close()
    per_token = weight_bytes(loaded.model)
    print(f"threads {args.threads}: read {read:.1f} GB/s, copy {copy:.1f} GB/s (read + write)")
    print(f"default model: {per_token / 1e6:.0f} MB of weights read per token; ceiling {read * 1e9 / per_token:.1f} "
          f"tok/s at the read bandwidth")
    print(f"one stream: {rate:.1f} tok/s = {rate * per_token / 1e9:.1f} GB/s = {rate * per_token / (read * 1e9):.2f} "
          "of the read bandwidth")


if __name__ == "__main__":
    main()
