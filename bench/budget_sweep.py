"""Thinking budgets × prompts through the engine on the default model: does `budget_tokens` mean what it says?

For each budget, every prompt is generated with thinking on (temperature 1 and a fixed seed per prompt, or greedy
with --temperature 0), and the engine's own figures (`Finished.stats`) are collected: thinking tokens, whether the
budget forced the close, "Wait"s inserted. Printed per budget: min / median / max thinking tokens, whether the max
stays within the budget (it must, always), the fraction of runs the budget had to end, and the answer length.
SmolLM2-135M has no native thinking, so it runs with prompted thinking (the server opens `<think>` itself).
Run: python bench/budget_sweep.py [--budgets 16 32 64 128 256] [--answer-tokens 24] [--min-tokens 0] [--threads N]
"""
import argparse
import statistics
import time

import torch

from app.config import Config
from app.engine.events import Finished
from app.engine.request import GenerationRequest, Sampling, ThinkingSettings
from app.engine.runtime import LocalEngine

PROMPTS = [
    "What is 17 multiplied by 23?",
    "Is 221 a prime number?",
    "A shirt costs $20 after a 20% discount. What was the original price?",
    "Name three differences between a cat and a dog.",
    "If I have 3 apples and eat one, then buy five more, how many do I have?",
]


def run_one(engine: LocalEngine, prompt: str, budget: int, args, seed: int) -> Finished:
    request = GenerationRequest(messages=({"role": "user", "content": prompt},),
                                max_new_tokens=budget + args.answer_tokens,
                                sampling=Sampling(temperature=args.temperature),
                                thinking=ThinkingSettings(budget_tokens=budget, min_tokens=args.min_tokens))
    torch.manual_seed(seed)              # jobs run one at a time on the worker thread: the seed is this job's
    *_, finished = engine.submit(request).events(timeout=600)
    if not isinstance(finished, Finished):
        raise RuntimeError(f"generation failed: {finished}")
    return finished


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budgets", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--answer-tokens", type=int, default=24, help="max_tokens = budget + this")
    parser.add_argument("--min-tokens", type=int, default=0, help="s1 budget forcing: minimum thinking tokens")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--prompts", type=int, default=len(PROMPTS))
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    engine = LocalEngine(Config())
    engine.load()
    print(f"model {engine.model_id}, thinking profile {engine.thinking_profile.name}, "
          f"temperature {args.temperature}, min_tokens {args.min_tokens}, {args.prompts} prompts")
    print(f"{'budget':>6} {'min':>5} {'median':>7} {'max':>5} {'max<=budget':>11} {'forced':>7} {'waits':>6} "
          f"{'answer tok':>10} {'seconds':>8}")
    all_within = True
    started_all = time.monotonic()
    try:
        for budget in args.budgets:
            started = time.monotonic()
            runs = [run_one(engine, prompt, budget, args, seed=index)
                    for index, prompt in enumerate(PROMPTS[:args.prompts])]
            thinking = [run.stats["thinking_tokens"] for run in runs]
            forced = sum(run.stats["budget_forced"] for run in runs) / len(runs)
            waits = sum(run.stats["waits_inserted"] for run in runs)
            answer = statistics.median(run.usage.output_tokens - run.stats["thinking_tokens"] for run in runs)
            within = max(thinking) <= budget
            all_within &= within
            print(f"{budget:>6} {min(thinking):>5} {statistics.median(thinking):>7.0f} {max(thinking):>5} "
                  f"{'yes' if within else 'NO':>11} {forced:>7.0%} {waits:>6} {answer:>10.0f} "
                  f"{time.monotonic() - started:>8.1f}")
    finally:
        engine.close()
    print(f"every thinking section within its budget: {'yes' if all_within else 'NO'}; "
          f"total {time.monotonic() - started_all:.0f} s")


if __name__ == "__main__":
    main()
