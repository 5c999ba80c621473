"""The client bench/vs_llamacpp.py drives both servers with: plain `requests` streaming SSE from /v1/messages,
greedy, timing the first and last content delta of each stream and reading usage from its events.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import requests


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
