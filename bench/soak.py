"""A soak: minutes of mixed traffic from several threads against a real server on the default model, then what
it left behind.

Traffic: plain messages, streams, thinking (--min-thinking-budget 16), forced tool calls, streams and plain
requests abandoned half-way, invalid requests, count_tokens. Printed:
- requests by kind and outcome, and any outcome that kind should never have (a 5xx, an exception, a bad stream);
- generations sent vs the engine's finished + cancelled + failed: every one accounted for;
- RSS and live threads of the server process after warm-up, every minute, and at the end (/proc/PID/status);
- /health's engine figures at the end (queue, counts, prefix cache).

Run: python bench/soak.py [--minutes 30] [--threads 4] [--kv-budget-mb N]
"""
from __future__ import annotations

import argparse
import collections
import json
import random
import tempfile
import threading
import time
from pathlib import Path

import requests

from app.config import Config
from app.engine.model.loader import converted_gguf_dir, default_gguf_path
from app.launcher import ServerProcess

MODEL = "SmolLM2-135M-Instruct"
KEY = "soak-key"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
LONG = [{"role": "user", "content": "Count from 1 to 2000, separated by commas."}]
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def chat(i: int) -> list:
    return [{"role": "user", "content": f"Write one sentence about the number {i}."}]


def read_stream(response) -> dict:
    """Read an SSE stream to its end; the final message_delta, checked (ends in message_stop, indices in order)."""
    names, final, index = [], None, -1
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            names.append(line[len("event: "):])
        elif line.startswith("data: "):
            data = json.loads(line[len("data: "):])
            if data["type"] == "content_block_start":
                assert data["index"] == index + 1
                index += 1
            elif data["type"] == "message_delta":
                final = data
            elif data["type"] == "error":
                raise RuntimeError(f"error event: {data['error']['type']}")
    assert names[0] == "message_start" and names[-1] == "message_stop" and final is not None, names[-3:]
    return final


class Traffic:
    """One request of each kind; each returns its outcome label. `generations` counts the requests that reached
    the engine (a model run that must end finished, cancelled or failed)."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.lock = threading.Lock()
        self.generations = 0

    def _post(self, body: dict, path: str = "/v1/messages", **kwargs):
        return requests.post(self.base_url + path, json=body, headers=HEADERS, timeout=kwargs.pop("timeout", 300),
                             **kwargs)

    def _generated(self) -> None:
        with self.lock:
            self.generations += 1

    def message(self, i: int) -> str:
        response = self._post({"model": MODEL, "max_tokens": 24, "messages": chat(i)})
        self._generated()
        return str(response.status_code)

    def stream(self, i: int, **extra) -> str:
        body = {"model": MODEL, "max_tokens": 40, "messages": chat(i), "stream": True, **extra}
        with self._post(body, stream=True) as response:
            self._generated()
            if response.status_code != 200:
                return str(response.status_code)
            final = read_stream(response)
            return f"200 {final['delta']['stop_reason']}"

    def thinking(self, i: int) -> str:
        return self.stream(i, max_tokens=80, thinking={"type": "enabled", "budget_tokens": random.randint(16, 48)})

    def tools(self, i: int) -> str:
        response = self._post({"model": MODEL, "max_tokens": 60, "tools": [WEATHER], "tool_choice": {"type": "any"},
                               "messages": [{"role": "user", "content": f"Weather in city number {i}?"}]})
        self._generated()
        return f"{response.status_code} {response.json().get('stop_reason')}"

    def cancel_stream(self, i: int) -> str:
        with self._post({"model": MODEL, "max_tokens": 2000, "messages": LONG, "stream": True}, stream=True) as r:
            self._generated()
            for line in r.iter_lines(decode_unicode=True):
                if '"content_block_delta"' in line:
                    return "hung up mid-stream"
        return "stream ended before a delta"

    def cancel_plain(self, i: int) -> str:
        try:
            self._post({"model": MODEL, "max_tokens": 2000, "messages": LONG}, timeout=1.5)
        except requests.exceptions.ReadTimeout:
            return "hung up while generating"
        finally:
            self._generated()
        return "answered before the hang-up"

    def bad(self, i: int) -> str:
        body = random.choice([{"model": MODEL, "messages": chat(i)}, {"model": MODEL, "max_tokens": -1},
                              {"model": MODEL, "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]}])
        response = self._post(body)
        assert response.json()["type"] == "error"
        return str(response.status_code)

    def count(self, i: int) -> str:
        response = self._post({"model": MODEL, "messages": chat(i)}, path="/v1/messages/count_tokens")
        return str(response.status_code)


# kind -> (weight, the outcomes that kind may have)
MIX = {"message": (3, {"200"}), "stream": (3, {"200 end_turn", "200 max_tokens"}),
       "thinking": (2, {"200 end_turn", "200 max_tokens"}), "tools": (2, {"200 tool_use", "200 max_tokens"}),
       "cancel_stream": (1, {"hung up mid-stream"}),
       "cancel_plain": (1, {"hung up while generating", "answered before the hang-up"}),
       "bad": (2, {"400"}), "count": (2, {"200"})}


def process_figures(pid: int) -> tuple[float, int]:
    """(RSS in MB, live threads) of a process, from /proc/PID/status."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


def worker(traffic: Traffic, stop_at: float, outcomes: collections.Counter, lock: threading.Lock, seed: int):
    rng = random.Random(seed)
    kinds, weights = list(MIX), [w for w, _ in MIX.values()]
    i = 0
    while time.monotonic() < stop_at:
        kind = rng.choices(kinds, weights)[0]
        i += 1
        try:
            outcome = getattr(traffic, kind)(seed * 100_000 + i)
        except Exception as error:      # counted, never lost: an exception is an outcome too
            outcome = f"exception {type(error).__name__}: {str(error)[:80]}"
        with lock:
            outcomes[(kind, outcome)] += 1


def wait_idle(base_url: str, deadline_s: float = 300) -> dict:
    deadline = time.monotonic() + deadline_s
    while True:
        engine = requests.get(base_url + "/health", timeout=30).json()["engine"]
        if engine["in_flight"] == 0 or time.monotonic() > deadline:
            return engine
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--kv-budget-mb", type=int, default=None,
                        help="the server's KV pool; a small one fills early, so RSS must level off early")
    args = parser.parse_args()
    cache_flags = ("--kv-budget-mb", str(args.kv_budget_mb)) if args.kv_budget_mb is not None else ()
    shared = Path(Config().data_dir)
    converted_gguf_dir(default_gguf_path(), shared)
    with tempfile.TemporaryDirectory() as data_dir:
        (Path(data_dir) / "converted").symlink_to(shared / "converted")
        with ServerProcess("--data-dir", data_dir, "--api-key", KEY, "--min-thinking-budget", "16", *cache_flags,
                           log_path=Path("test-output/bench-soak-server.log")) as server:
            run(server, args)


def run(server: ServerProcess, args) -> None:
    pid, traffic = server.process.pid, Traffic(server.base_url)
    for n, kind in enumerate(MIX):        # warm-up: every kind once, so lazy imports and caches are in place
        getattr(traffic, kind)(n)
    engine_before = wait_idle(server.base_url)
    generations_before = traffic.generations
    start_rss, start_threads = process_figures(pid)
    print(f"after warm-up: RSS {start_rss:.0f} MB, {start_threads} threads")
    outcomes, lock = collections.Counter(), threading.Lock()
    stop_at = time.monotonic() + args.minutes * 60
    threads = [threading.Thread(target=worker, args=(traffic, stop_at, outcomes, lock, seed), daemon=True)
               for seed in range(args.threads)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    samples = []
    while (left := stop_at - time.monotonic()) > 0:
        time.sleep(min(60, left))
        rss, live = process_figures(pid)
        samples.append((rss, live))
        # The KV pool's pages are committed as tokens are written: RSS grows to weights + pool, by design, then stays.
        cached = requests.get(server.base_url + "/health", timeout=30).json()["engine"]["prefix_cache"]["tokens"]
        print(f"  {(time.monotonic() - started) / 60:5.1f} min: RSS {rss:.0f} MB, {live} threads, "
              f"{cached} tokens kept in idle slots", flush=True)
    for thread in threads:
        thread.join()
    engine = wait_idle(server.base_url)
    end_rss, end_threads = process_figures(pid)

    print(f"\n{sum(outcomes.values())} requests in {(time.monotonic() - started) / 60:.1f} min from "
          f"{args.threads} threads, by kind and outcome:")
    unexpected = 0
    for (kind, outcome), count in sorted(outcomes.items()):
        expected = outcome in MIX[kind][1]
        unexpected += 0 if expected else count
        print(f"  {kind:14s} {outcome:32s} {count:6d}{'' if expected else '   <- unexpected'}")
    ended = sum(engine[k] - engine_before[k] for k in ("finished", "cancelled", "failed"))
    sent = traffic.generations - generations_before
    print(f"generations sent {sent}; engine ended {ended} (finished "
          f"{engine['finished'] - engine_before['finished']}, "
          f"cancelled {engine['cancelled'] - engine_before['cancelled']}, "
          f"failed {engine['failed'] - engine_before['failed']}); in flight now {engine['in_flight']}")
    print(f"RSS: {start_rss:.0f} MB after warm-up, {end_rss:.0f} MB at the end (peak {max(s[0] for s in samples):.0f}"
          f"); the KV pool is {engine['kv_pool']['bytes'] / 2**20:.0f} MB, its pages committed as they are written")
    print(f"threads: {start_threads} after warm-up, {end_threads} at the end (peak {max(s[1] for s in samples)})")
    print("engine at the end:", json.dumps(engine, indent=1))
    print("unexpected outcomes:", unexpected, "| unaccounted generations:", sent - ended)


if __name__ == "__main__":
    main()
