"""The engine core, measured in this process on the default model (and a tiny random one), side by side in one run.

Only the engine's public interface is used (LocalEngine.submit, events, stats), so the same script measures an
older checkout too: `PYTHONPATH=/path/to/old/checkout python bench/engine_core.py` gives the "before" figures.

  short   aggregate decode tok/s of 1, 4 and 8 streams on a short prompt
  long    aggregate decode tok/s of 4 streams whose ~3,000-token prompts were read beforehand (so only decoding is
          timed), and its ratio to 4 short streams; against the floor that bytes per step set (weights + KV read)
  step    ms per step of the step loop on a tiny random model, where the forward costs almost nothing: the Python
          an accelerator would wait for, at 1 and 16 rows, without and with a thinking budget acting on every row

Run: python bench/engine_core.py [--only short,long,step] [--tokens 64] [--threads 1]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "engine"))

from app.config import Config  # noqa: E402
from app.engine.events import Finished  # noqa: E402
from app.engine.model.loader import load_model, wrap_loaded_model  # noqa: E402
from app.engine.request import GenerationRequest, Sampling, ThinkingSettings  # noqa: E402
from app.engine.runtime import LocalEngine  # noqa: E402

COUNTING = "Count from 1 to 5000, separated by commas."


def request(text: str, tokens: int, thinking: bool = False) -> GenerationRequest:
    # With thinking, a budget past the output: the budget processor acts on every token (it bans end-of-turn).
    return GenerationRequest(messages=({"role": "user", "content": text},), max_new_tokens=tokens,
                             sampling=Sampling(temperature=0),
                             thinking=ThinkingSettings(budget_tokens=tokens + 100) if thinking else None)


def decode_rate(engine: LocalEngine, texts: list[str], tokens: int, thinking: bool = False) -> float:
    """Aggregate decode tok/s of these requests run together, from the moment every one has its first token."""
    handles = [engine.submit(request(text, tokens, thinking)) for text in texts]
    for handle in handles:
        handle.next_event(timeout=900)
    started = time.perf_counter()
    generated = 0
    for handle in handles:
        generated += [e for e in handle.events(timeout=900) if isinstance(e, Finished)][0].usage.output_tokens - 1
    return generated / (time.perf_counter() - started)


def long_prompt(index: int, words: int) -> str:
    filler = " ".join(f"item{index}-{i}" for i in range(words))
    return f"Document {index}: {filler}\n\n{COUNTING}"


def short(engine, args) -> dict:
    return {f"{n} stream(s) tok/s": decode_rate(engine, [COUNTING] * n, args.tokens) for n in (1, 4, 8)}


def long(engine, args, loaded) -> dict:
    texts = [long_prompt(i, args.long_words) for i in range(4)]
    prompt_tokens = [engine.count_prompt_tokens(request(text, 1)) for text in texts]
    for text in texts:                                        # read each prompt once: later runs find it cached
        list(engine.submit(request(text, 1)).events(timeout=900))
    four_short = decode_rate(engine, [COUNTING] * 4, args.tokens)
    four_long = decode_rate(engine, texts, args.tokens)
    # Bytes each step reads: the weights once, and every row's KV.
    weights = sum(p.numel() * p.element_size() for p in loaded.model.parameters())
    config = loaded.model.config
    kv_per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * \
        (config.hidden_size // config.num_attention_heads) * 4
    kv = sum(prompt_tokens) * kv_per_token
    return {"prompt tokens": prompt_tokens, "4 short tok/s": four_short, "4 long tok/s": four_long,
            "long/short": four_long / four_short, "floor (weights / (weights + KV))": weights / (weights + kv)}


def step_overhead(args) -> dict:
    from engine_helpers import build_tiny_llama   # the tests' tiny random Llama, with the real tokenizer
    tokenizer = load_model(Config(device="cpu")).tokenizer
    loaded = wrap_loaded_model(build_tiny_llama(tokenizer), tokenizer, "tiny")
    figures = {}
    for thinking in (False, True):
        for rows in (1, 16):
            engine = LocalEngine(Config(max_batch_size=16), loader=lambda config: loaded)
            engine.load()
            decode_rate(engine, [COUNTING] * rows, 8, thinking)              # warm up
            steps = engine.stats()["steps"]
            started = time.perf_counter()
            decode_rate(engine, [COUNTING] * rows, args.step_tokens, thinking)
            figures[f"ms per step, {rows} row(s){', thinking' if thinking else ''}"] = (
                time.perf_counter() - started) * 1000 / (engine.stats()["steps"] - steps)
            engine.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="short,long,step")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--long-words", type=int, default=500, help="about 6 tokens a word: ~3,000 tokens")
    parser.add_argument("--step-tokens", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    parts = args.only.split(",")
    results = {}
    if "short" in parts or "long" in parts:
        loaded = load_model(Config(device="cpu"))
        engine = LocalEngine(Config(torch_threads=args.threads), loader=lambda config: loaded)
        engine.load()
        if "short" in parts:
            results.update(short(engine, args))
        if "long" in parts:
            results.update(long(engine, args, loaded))
        engine.close()
    if "step" in parts:
        torch.set_num_threads(args.threads)
        results.update(step_overhead(args))
    for name, value in results.items():
        print(f"{name:40s} {value:.3f}" if isinstance(value, float) else f"{name:40s} {value}")


if __name__ == "__main__":
    main()
