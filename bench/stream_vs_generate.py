"""Streamed decode throughput through the HTTP API vs raw `model.generate()`, side by side in one run.

Same model (the default), dtype (float32), prompt and greedy decoding. Rounds alternate API / raw so machine
noise hits both alike; each figure is tokens / wall seconds from sending the request (or calling generate) to
the last token, and the ratio of medians is printed. The server runs in its own process, idle while the raw
side runs.
Both sides use the server's torch thread count (--torch-threads 0: half the cores), so the ratio measures the HTTP
API and the step loop, not the thread setting; bench/thread_contention.py measures that.
Run: python bench/stream_vs_generate.py [--rounds 7] [--max-tokens 200]
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import requests
import torch

from app.config import Config
from app.engine.model.loader import load_model
from app.engine.model.prompt import prompt_ids, render_prompt
from app.engine.request import GenerationRequest
from app.engine.runtime import default_torch_threads
from app.launcher import ServerProcess

MESSAGES = [{"role": "user", "content": "Count from 1 to 2000, separated by commas."}]


def api_round(base_url: str, model: str, max_tokens: int) -> tuple[int, float]:
    body = {"model": model, "max_tokens": max_tokens, "messages": MESSAGES, "stream": True, "temperature": 0}
    started = time.perf_counter()
    output_tokens = None
    with requests.post(base_url + "/v1/messages", json=body, stream=True, timeout=600) as response:
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("data: ") and '"message_delta"' in line:
                output_tokens = json.loads(line[6:])["usage"]["output_tokens"]
            if line == "event: message_stop":
                break
    return output_tokens, time.perf_counter() - started


def raw_round(loaded, ids: list[int], max_tokens: int) -> tuple[int, float]:
    input_ids = torch.tensor([ids])
    started = time.perf_counter()
    output = loaded.model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_tokens,
                                   do_sample=False, eos_token_id=sorted(loaded.end_of_turn_ids),
                                   pad_token_id=loaded.tokenizer.pad_token_id)
    return output.shape[1] - len(ids), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=200)
    args = parser.parse_args()

    torch.set_num_threads(default_torch_threads())
    loaded = load_model(Config(dtype="float32"))
    ids = prompt_ids(loaded.tokenizer, render_prompt(loaded.tokenizer, GenerationRequest(messages=tuple(MESSAGES))))
    api_rates, raw_rates = [], []
    with ServerProcess("--dtype", "float32", log_path=Path("test-output/bench-server.log")) as server:
        api_round(server.base_url, loaded.model_id, 8)          # warm-up both sides
        raw_round(loaded, ids, 8)
        for round_index in range(args.rounds):
            api_tokens, api_s = api_round(server.base_url, loaded.model_id, args.max_tokens)
            raw_tokens, raw_s = raw_round(loaded, ids, args.max_tokens)
            api_rates.append(api_tokens / api_s)
            raw_rates.append(raw_tokens / raw_s)
            print(f"round {round_index + 1}: api {api_tokens} tok in {api_s:.2f} s = {api_rates[-1]:.1f} tok/s | "
                  f"raw {raw_tokens} tok in {raw_s:.2f} s = {raw_rates[-1]:.1f} tok/s")
    api, raw = statistics.median(api_rates), statistics.median(raw_rates)
    print(f"median: api {api:.1f} tok/s, raw generate {raw:.1f} tok/s, api/raw = {api / raw:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
