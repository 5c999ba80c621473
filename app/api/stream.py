"""Engine events → Anthropic's content-block events, and those → an SSE stream or one Message.

Both paths run the same `BlockAssembler`, so a streamed response and a plain one always hold the same content.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

from ..engine.events import (BlockEnd, Failed, Finished, StopReason, TextDelta, ThinkingDelta, ToolArgsDelta,
                             ToolCallStart, Usage)
from ..engine.interface import GenerationHandle
from ..service.generation import engine_events, failure_message
from ..service.ids import figures_with_call_ids
from .errors import ServerError

STOP_REASONS = {StopReason.END: "end_turn", StopReason.LENGTH: "max_tokens",
                StopReason.CONTEXT_WINDOW: "model_context_window_exceeded",
                StopReason.STOP_SEQUENCE: "stop_sequence", StopReason.TOOL_CALL: "tool_use",
                StopReason.CANCELLED: "end_turn"}


def tool_use_id(engine_id: str) -> str:
    """Anthropic's shape of the engine's call id: `toolu_` and its 24 letters and digits."""
    return "toolu_" + engine_id


def anthropic_usage(usage: Usage, marks_cache: bool) -> dict:
    """The engine's usage in Anthropic's split: input + cache read + cache creation is the whole prompt."""
    computed = usage.computed_prompt_tokens
    return usage_json(0 if marks_cache else computed, usage.output_tokens, usage.cached_prompt_tokens,
                      computed if marks_cache else 0)


def usage_json(input_tokens: int, output_tokens: int, cache_read: int = 0, cache_creation: int = 0) -> dict:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens,
            "cache_creation_input_tokens": cache_creation, "cache_read_input_tokens": cache_read}


class BlockAssembler:
    """Turns engine events into (event name, data) pairs: content_block_start/delta/stop with indices 0, 1, 2…
    in order and never overlapping, then message_delta and message_stop."""

    def __init__(self, input_tokens: int, *, sign_thinking: Callable[[str], str], show_thinking: bool = True,
                 thinking_expected: bool = False, context_management: dict | None = None, marks_cache: bool = False):
        self.input_tokens = input_tokens
        # The request set a cache_control breakpoint: the prompt tokens computed (and kept in the prefix cache) are
        # cache_creation_input_tokens rather than input_tokens. Every prompt is cached either way.
        self.marks_cache = marks_cache
        # Context editing's report (`applied_edits`): Anthropic sends it in the final message_delta.
        self.context_management = context_management
        self.sign_thinking = sign_thinking
        self.show_thinking = show_thinking
        # With thinking on, a response always starts with a thinking block, as Anthropic's do, even when the
        # model closed its thinking at once (or the budget left room for the end marker only).
        self.thinking_missing = thinking_expected
        self.index = -1
        self.open_kind: str | None = None
        self.thinking_text: list[str] = []

    def _open(self, kind: str, block: dict) -> list:
        events = self._close()
        self.index += 1
        self.open_kind = kind
        return events + [("content_block_start", {"type": "content_block_start", "index": self.index,
                                                  "content_block": block})]

    def _delta(self, delta: dict) -> tuple:
        return ("content_block_delta", {"type": "content_block_delta", "index": self.index, "delta": delta})

    def _close(self) -> list:
        if self.open_kind is None:
            return []
        events = []
        if self.open_kind == "thinking":
            signature = self.sign_thinking("".join(self.thinking_text))
            events.append(self._delta({"type": "signature_delta", "signature": signature}))
            self.thinking_text = []
        self.open_kind = None
        return events + [("content_block_stop", {"type": "content_block_stop", "index": self.index})]

    def feed(self, event) -> list[tuple[str, dict]]:
        if isinstance(event, ThinkingDelta) and event.text:
            self.thinking_missing = False
        elif self.thinking_missing and isinstance(event, (TextDelta, ToolCallStart, Finished)):
            self.thinking_missing = False
            empty = self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""}) + self._close()
            return empty + self.feed(event)
        if isinstance(event, TextDelta) and event.text:
            events = [] if self.open_kind == "text" else self._open("text", {"type": "text", "text": ""})
            return events + [self._delta({"type": "text_delta", "text": event.text})]
        if isinstance(event, ThinkingDelta) and event.text:
            events = [] if self.open_kind == "thinking" else self._open(
                "thinking", {"type": "thinking", "thinking": "", "signature": ""})
            self.thinking_text.append(event.text)
            if self.show_thinking:
                events.append(self._delta({"type": "thinking_delta", "thinking": event.text}))
            return events
        if isinstance(event, ToolCallStart):
            return self._open("tool_use", {"type": "tool_use", "id": tool_use_id(event.call_id), "name": event.name,
                                           "input": {}})
        if isinstance(event, ToolArgsDelta) and event.partial_json:
            return [self._delta({"type": "input_json_delta", "partial_json": event.partial_json})]
        if isinstance(event, BlockEnd):
            return self._close()
        if isinstance(event, Finished):
            delta = {"type": "message_delta",
                     "delta": {"stop_reason": STOP_REASONS[event.stop_reason], "stop_sequence": event.stop_sequence},
                     "usage": anthropic_usage(event.usage, self.marks_cache)}
            if event.stats:
                delta["thinkserve"] = figures_with_call_ids(event.stats, tool_use_id)
            if self.context_management is not None:
                delta["context_management"] = self.context_management
            return self._close() + [("message_delta", delta), ("message_stop", {"type": "message_stop"})]
        return []


def message_skeleton(message_id: str, model: str, input_tokens: int) -> dict:
    # Sent in message_start before the prompt is read, so the whole prompt is input_tokens here; the final usage
    # (message_delta, or the Message) splits it into input, cache read and cache creation.
    return {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": usage_json(input_tokens, 0)}


def _apply(message: dict, name: str, data: dict, partial_json: dict) -> None:
    """Fold one event into the message, the way the SDKs' stream accumulators do."""
    if name == "content_block_start":
        message["content"].append(dict(data["content_block"]))
    elif name == "content_block_delta":
        block, delta = message["content"][data["index"]], data["delta"]
        kind = delta["type"]
        if kind == "text_delta":
            block["text"] += delta["text"]
        elif kind == "thinking_delta":
            block["thinking"] += delta["thinking"]
        elif kind == "signature_delta":
            block["signature"] = delta["signature"]
        elif kind == "citations_delta":
            block.setdefault("citations", []).append(delta["citation"])
        elif kind == "input_json_delta":
            partial_json[data["index"]] = partial_json.get(data["index"], "") + delta["partial_json"]
    elif name == "content_block_stop" and data["index"] in partial_json:
        message["content"][data["index"]]["input"] = json.loads(partial_json.pop(data["index"]))
    elif name == "message_delta":
        message.update(data["delta"])
        message["usage"] = data["usage"]
        if "thinkserve" in data:
            message["thinkserve"] = data["thinkserve"]
        if "context_management" in data:
            message["context_management"] = data["context_management"]


def collect_message(handle: GenerationHandle, skeleton: dict, assembler: BlockAssembler,
                    client_gone: Callable[[], bool]) -> dict:
    message, partial_json = skeleton, {}
    for event in engine_events(handle, client_gone):
        if isinstance(event, Failed):
            raise ServerError(failure_message(event))
        for name, data in assembler.feed(event):
            _apply(message, name, data, partial_json)
    return message


def sse(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


def sse_stream(handle: GenerationHandle, skeleton: dict, assembler: BlockAssembler,
               client_gone: Callable[[], bool], *, ping_interval_s: float, request_id: str) -> Iterator[bytes]:
    yield sse("message_start", {"type": "message_start", "message": skeleton})
    yield sse("ping", {"type": "ping"})
    last_sent = time.monotonic()
    for event in engine_events(handle, client_gone):
        if event is None:
            if time.monotonic() - last_sent >= ping_interval_s:
                yield sse("ping", {"type": "ping"})
                last_sent = time.monotonic()
            continue
        if isinstance(event, Failed):
            # Headers are gone already: the error travels as an event, in the same envelope, and ends the stream.
            yield sse("error", ServerError(failure_message(event)).body(request_id))
            return
        for name, data in assembler.feed(event):
            yield sse(name, data)
            last_sent = time.monotonic()
