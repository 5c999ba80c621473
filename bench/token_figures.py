"""What token-level figures (`thinkserve.logprobs`) cost: one stream's decode tok/s on the default model without
them, with the chosen token's figures (logprobs 0), and with 5 alternatives, in interleaved rounds.

  python bench/token_figures.py [--rounds 5] [--tokens 128] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import Config  # noqa: E402
from app.engine.events import Finished  # noqa: E402
from app.engine.model.loader import load_model  # noqa: E402
from app.engine.request import GenerationRequest, Sampling  # noqa: E402
from app.engine.runtime import LocalEngine  # noqa: E402

COUNTING = "Count from 1 to 5000, separated by commas."


def rate(engine: LocalEngine, tokens: int, logprobs: int | None) -> float:
    handle = engine.submit(GenerationRequest(messages=({"role": "user", "content": COUNTING},), max_new_tokens=tokens,
                                             sampling=Sampling(temperature=0), logprobs=logprobs))
    handle.next_event(timeout=900)
    started = time.perf_counter()
    finished = [e for e in handle.events(timeout=900) if isinstance(e, Finished)][0]
    return (finished.usage.output_tokens - 1) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    loaded = load_model(Config(device="cpu"))
    engine = LocalEngine(Config(torch_threads=args.threads), loader=lambda config: loaded)
    engine.load()
    settings = {"none": None, "logprobs 0": 0, "logprobs 5": 5}
    rate(engine, 8, None)                                       # warm up
    rates = {name: [] for name in settings}
    for _ in range(args.rounds):
        for name, logprobs in settings.items():
            rates[name].append(rate(engine, args.tokens, logprobs))
    engine.close()
    base = statistics.median(rates["none"])
    print(f"one stream, {args.tokens} tokens greedy, median of {args.rounds} interleaved rounds")
    for name, values in rates.items():
        print(f"{name:12s} {statistics.median(values):6.1f} tok/s   {statistics.median(values) / base:.3f}x")


if __name__ == "__main__":
    main()
