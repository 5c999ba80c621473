"""Two torch processes on one small machine: how the thread settings decide whether both keep decoding.

A user runs a notebook's server next to a playground server, or a benchmark next to the tests. Each process's
OpenMP threads busy-wait between parallel regions by default; two such processes on two cores spin against each
other. thinkserve's default (--torch-threads 0) is half the cores, so two processes fit. This runs the default
model's decode loop (greedy, 64 tokens, batch 1) in subprocesses, alone and two at once, under each setting, and
prints tokens/s and the together/alone ratio (1.0 = no harm, 0.5 = a fair share of the cores).

Run: python bench/thread_contention.py [--tokens 64] [--only LABEL-PART]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HALF = max(1, (os.cpu_count() or 2) // 2)
# (label, environment, torch threads: 0 = torch's default, one per core)
SETTINGS = [
    ("torch defaults", {}, 0),
    ("OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}, 0),
    (f"{HALF} thread(s): half the cores", {}, HALF),
    (f"{HALF} thread(s) + PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}, HALF),
]


def decode_worker(tokens: int, threads: int, start_at: float) -> None:
    """In a subprocess: load the default model, wait for the common start time, decode, print tokens/s."""
    import torch

    from app.config import Config
    from app.engine.model.loader import load_model
    if threads:
        torch.set_num_threads(threads)
    loaded = load_model(Config(device="cpu"))
    ids = loaded.tokenizer("Count from 1 to 100, one number per line.", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        loaded.model.generate(ids, max_new_tokens=4, do_sample=False)      # warm up
        time.sleep(max(0.0, start_at - time.time()))
        started = time.perf_counter()
        out = loaded.model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
        seconds = time.perf_counter() - started
    print(json.dumps({"tokens_per_s": (out.shape[1] - ids.shape[1]) / seconds,
                      "threads": torch.get_num_threads()}))


def run(processes: int, env: dict, threads: int, tokens: int) -> list[float]:
    start_at = time.time() + 25          # time for every process to load the (cached) weights first
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bench.thread_contention import decode_worker; " \
           f"decode_worker({tokens}, {threads}, {start_at})"
    children = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, env={**os.environ, **env}, text=True)
                for _ in range(processes)]
    rates = []
    for child in children:
        out, _ = child.communicate(timeout=900)
        rates.append(json.loads(out.strip().splitlines()[-1])["tokens_per_s"])
    return rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--only", default="", help="run only the settings whose label contains this")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; default model, greedy decode of {args.tokens} tokens, batch 1")
    print(f"{'setting':26} {'alone tok/s':>12} {'two at once, each':>20} {'together/alone':>15}")
    for label, env, threads in SETTINGS:
        if args.only not in label:
            continue
        alone = run(1, env, threads, args.tokens)[0]
        pair = run(2, env, threads, args.tokens)
        print(f"{label:26} {alone:12.1f} {' / '.join(f'{r:.1f}' for r in pair):>20} "
              f"{min(pair) / alone:15.2f}", flush=True)


if __name__ == "__main__":
    main()
