"""Message Batches on the default model, side by side in one run against one real server:

1. throughput: a batch of N small requests vs the same N requests sent one after another (wall time ratio);
2. priority: time to first token of an interactive streamed request while a big batch runs vs on the idle server
   (the ratio a playground or Claude Code user feels when a sweep runs in the background).

Run: python bench/batches.py [--requests 100] [--max-tokens 16] [--background 1000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import anthropic

from app.config import Config
from app.engine.model.loader import converted_gguf_dir, default_gguf_path
from app.launcher import ServerProcess

MODEL = "SmolLM2-135M-Instruct"


def params(i: int, max_tokens: int) -> dict:
    return {"model": MODEL, "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": f"Write one short sentence about the number {i}."}]}


def create(client, request: dict):
    # SDK 2.x types no `temperature`: it travels in extra_body, as users send it.
    fields = {k: v for k, v in request.items() if k != "temperature"}
    return client.messages.create(**fields, extra_body={"temperature": request["temperature"]})


def run_batch(client, requests: list[dict]) -> tuple[float, object]:
    started = time.perf_counter()
    batch = client.messages.batches.create(requests=[{"custom_id": f"r{i}", "params": p}
                                                     for i, p in enumerate(requests)])
    while (batch := client.messages.batches.retrieve(batch.id)).processing_status != "ended":
        time.sleep(0.25)
    return time.perf_counter() - started, batch


def time_to_first_token(client) -> float:
    started = time.perf_counter()
    with client.messages.stream(model=MODEL, max_tokens=4, messages=[{"role": "user", "content": "Say hi."}]) as s:
        for event in s:
            if event.type == "content_block_delta":
                return time.perf_counter() - started
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--background", type=int, default=1000, help="size of the batch running during priority")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    shared = Path(Config().data_dir)
    converted_gguf_dir(default_gguf_path(), shared)
    with tempfile.TemporaryDirectory() as data_dir:
        (Path(data_dir) / "converted").symlink_to(shared / "converted")
        with ServerProcess("--data-dir", data_dir, log_path=Path("test-output/bench-batches-server.log")) as server:
            client = anthropic.Anthropic(base_url=server.base_url, api_key="unused", max_retries=0, timeout=600)
            requests = [params(i, args.max_tokens) for i in range(args.requests)]
            create(client, requests[0])                                             # warm-up
            started = time.perf_counter()
            for request in requests:
                create(client, request)
            sequential = time.perf_counter() - started
            batched, batch = run_batch(client, requests)
            print(f"{args.requests} requests of {args.max_tokens} tokens: one after another {sequential:.1f} s, "
                  f"as one batch {batched:.1f} s ({batch.request_counts.succeeded} succeeded); "
                  f"batch/sequential = {batched / sequential:.2f}")

            idle = [time_to_first_token(client) for _ in range(args.rounds)]
            big = client.messages.batches.create(requests=[
                {"custom_id": f"bg{i}", "params": params(i, 64)} for i in range(args.background)])
            while client.messages.batches.retrieve(big.id).model_extra["thinkserve"]["running"] == 0:
                time.sleep(0.2)                                          # the batch is decoding before we measure
            busy = []
            for _ in range(args.rounds):
                busy.append(time_to_first_token(client))
                time.sleep(0.5)
            running = client.messages.batches.retrieve(big.id).model_extra["thinkserve"]
            client.messages.batches.cancel(big.id)
            idle_s, busy_s = statistics.median(idle), statistics.median(busy)
            print(f"time to first token: idle {idle_s * 1000:.0f} ms, during a {args.background}-request batch "
                  f"({running['running']} running) {busy_s * 1000:.0f} ms; busy/idle = {busy_s / idle_s:.2f}")


if __name__ == "__main__":
    main()
