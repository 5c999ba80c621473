"""The step loop's two promises, measured side by side in one run on the default model (float32, CPU):

1. batching: aggregate decode tokens/s of N concurrent streams vs one stream alone (same prompt style, same
   number of tokens per stream);
2. the prefix cache: time to first token of a request whose ~2,000-token prefix is cached vs the same request
   with the prefix cache off (cold), and the output is the same.

The engine runs in this process (LocalEngine, as the server runs it), with the server's thread policy.
Run: python bench/batching.py [--streams 8] [--tokens 64] [--prefix-tokens 2000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

from app.config import Config
from app.engine.events import Finished
from app.engine.model.loader import load_model
from app.engine.request import GenerationRequest, Sampling
from app.engine.runtime import LocalEngine


def counting_request(tokens: int) -> GenerationRequest:
    # A prompt the model answers at length, the same for every stream (greedy: the same answer), so every stream
    # decodes all its tokens and the batch stays full to the end. The engine measured has the prefix cache off.
    return GenerationRequest(messages=({"role": "user", "content": "Count from 1 to 2000, separated by commas."},),
                             max_new_tokens=tokens, sampling=Sampling(temperature=0))


def run_streams(engine: LocalEngine, streams: int, tokens: int) -> tuple[int, float]:
    started = time.perf_counter()
    handles = [engine.submit(counting_request(tokens)) for _ in range(streams)]
    generated = 0
    for handle in handles:
        generated += [e for e in handle.events(timeout=600) if isinstance(e, Finished)][0].usage.output_tokens
    return generated, time.perf_counter() - started


def time_to_first_token(engine: LocalEngine, request: GenerationRequest) -> tuple[float, list]:
    started = time.perf_counter()
    handle = engine.submit(request)
    first = handle.next_event(timeout=600)
    ttft = time.perf_counter() - started
    events = [first, *handle.events(timeout=600)]
    return ttft, events


def prefix_request(loaded, prefix_tokens: int, question: str) -> GenerationRequest:
    sentence = "The archive keeps every report in order, by date and by author, so nothing is ever lost. "
    per_sentence = len(loaded.tokenizer(sentence, add_special_tokens=False)["input_ids"])
    system = sentence * max(1, prefix_tokens // per_sentence)
    return GenerationRequest(messages=({"role": "system", "content": system}, {"role": "user", "content": question}),
                             max_new_tokens=8, sampling=Sampling(temperature=0))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--prefix-tokens", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    loaded = load_model(Config(device="cpu"))
    cached = LocalEngine(Config(max_batch_size=max(16, args.streams)), loader=lambda config: loaded)
    cold = LocalEngine(Config(max_batch_size=max(16, args.streams), no_prefix_cache=True), loader=lambda config: loaded)
    cached.load()
    cold.load()
    try:
        run_streams(cold, 2, 4)                                # warm-up
        singles, batches = [], []
        for _ in range(args.rounds):                           # alternate, so machine noise hits both alike
            tokens, seconds = run_streams(cold, 1, args.tokens)
            singles.append(tokens / seconds)
            tokens, seconds = run_streams(cold, args.streams, args.tokens)
            batches.append(tokens / seconds)
            print(f"1 stream {singles[-1]:6.1f} tok/s | {args.streams} streams {batches[-1]:6.1f} tok/s aggregate")
        single, batch = statistics.median(singles), statistics.median(batches)
        print(f"median: 1 stream {single:.1f} tok/s, {args.streams} streams {batch:.1f} tok/s aggregate, "
              f"ratio {batch / single:.2f}x (target >= 3x)")

        colds, warms = [], []
        for round_index in range(args.rounds):
            question = f"Question {round_index}: how are the reports kept?"
            request = prefix_request(loaded, args.prefix_tokens, question)
            prompt = cached.count_prompt_tokens(request)
            cold_ttft, cold_events = time_to_first_token(cold, request)
            time_to_first_token(cached, prefix_request(loaded, args.prefix_tokens, "Something else first?"))
            warm_ttft, warm_events = time_to_first_token(cached, request)
            assert warm_events[:-1] == cold_events[:-1], "a cache hit changed the output"
            read = warm_events[-1].usage.cached_prompt_tokens
            colds.append(cold_ttft)
            warms.append(warm_ttft)
            print(f"prompt {prompt} tokens: cold TTFT {cold_ttft * 1000:7.1f} ms | cached TTFT "
                  f"{warm_ttft * 1000:7.1f} ms ({read} tokens read from the cache)")
        cold_s, warm_s = statistics.median(colds), statistics.median(warms)
        print(f"median: cold {cold_s * 1000:.1f} ms, cached {warm_s * 1000:.1f} ms, cached/cold "
              f"{warm_s / cold_s:.3f} (target <= 0.1)")
    finally:
        cached.close()
        cold.close()


if __name__ == "__main__":
    main()
