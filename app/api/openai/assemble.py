"""Engine events → OpenAI's chat completion: one `chat.completion` object, or `chat.completion.chunk`s.

Both run one `ChoiceAssembler` per choice, so a streamed answer and a plain one hold the same content. Thinking goes
out as `reasoning_content` (DeepSeek's convention, followed by vLLM and llama.cpp). Tool call ids are OpenAI's
`call_` + the engine's 24 letters and digits, so the research figures' `tool_input_errors` still name the call the
client saw.
"""
from __future__ import annotations

import time

from ...engine.events import Finished, StopReason, TextDelta, ThinkingDelta, ToolArgsDelta, ToolCallStart, Usage
from ...service.ids import figures_with_call_ids, new_id


def call_id(engine_id: str) -> str:
    return "call_" + engine_id


def client_figures(stats: dict) -> dict:
    """The engine's figures with its call ids written as this API's (both OpenAI adapters use the same ids)."""
    return figures_with_call_ids(stats, call_id)

FINISH_REASONS = {StopReason.END: "stop", StopReason.STOP_SEQUENCE: "stop", StopReason.LENGTH: "length",
                  StopReason.CONTEXT_WINDOW: "length",
                  StopReason.TOOL_CALL: "tool_calls", StopReason.CANCELLED: "stop"}


def usage_json(prompt_tokens: int, cached_tokens: int, completion_tokens: int, reasoning_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens}}


def finished_usage(finished: list[Finished]) -> dict:
    """One usage for the request: the prompt counted once (every choice reads the same one), completions summed."""
    first: Usage = finished[0].usage
    return usage_json(first.prompt_tokens, first.cached_prompt_tokens,
                      sum(f.usage.output_tokens for f in finished),
                      sum(int(f.stats.get("thinking_tokens", 0) or 0) for f in finished))


class ChoiceAssembler:
    """One choice's engine events as chunk deltas, and the message they add up to."""

    def __init__(self, index: int, *, thinking: bool):
        self.index = index
        self.thinking = thinking              # reasoning_content is on the message (maybe "") only with thinking on
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: list[dict] = []
        self.finished: Finished | None = None

    def feed(self, event) -> dict | None:
        """The delta this event adds, or None (a section's end adds nothing a client sees)."""
        if isinstance(event, TextDelta) and event.text:
            self.content.append(event.text)
            return {"content": event.text}
        if isinstance(event, ThinkingDelta) and event.text:
            self.reasoning.append(event.text)
            return {"reasoning_content": event.text}
        if isinstance(event, ToolCallStart):
            call = {"id": call_id(event.call_id), "type": "function", "function": {"name": event.name, "arguments": ""}}
            self.tool_calls.append(call)
            return {"tool_calls": [{"index": len(self.tool_calls) - 1, **call,
                                    "function": dict(call["function"])}]}
        if isinstance(event, ToolArgsDelta) and event.partial_json and self.tool_calls:
            self.tool_calls[-1]["function"]["arguments"] += event.partial_json
            return {"tool_calls": [{"index": len(self.tool_calls) - 1,
                                    "function": {"arguments": event.partial_json}}]}
        if isinstance(event, Finished):
            self.finished = event
        return None

    @property
    def finish_reason(self) -> str | None:
        if self.finished is None:
            return None
        # A turn that called tools reports it even when the model's end-of-turn token closed it.
        return "tool_calls" if self.tool_calls and not self.finished.stop_reason.cut_off \
            else FINISH_REASONS[self.finished.stop_reason]

    def message(self) -> dict:
        message = {"role": "assistant", "content": "".join(self.content) if self.content or not self.tool_calls
                   else None}
        if self.thinking or self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message

    def figures(self) -> dict:
        return client_figures(self.finished.stats) if self.finished is not None else {}

    def logprobs(self) -> dict | None:
        """OpenAI's `logprobs` of the answer's tokens, from the engine's token-level figures (None if not asked)."""
        figures = (self.finished.stats or {}).get("logprobs") if self.finished is not None else None
        if figures is None:
            return None

        def entry(token: dict) -> dict:
            return {"token": token["token"], "logprob": token["logprob"],
                    "bytes": list(token["token"].encode("utf-8"))}

        return {"content": [{**entry(token), "top_logprobs": [entry(alt) for alt in token.get("top", [])]}
                            for token in figures["answer"]["tokens"]], "refusal": None}

    def choice(self) -> dict:
        choice = {"index": self.index, "message": self.message(), "logprobs": self.logprobs(),
                  "finish_reason": self.finish_reason}
        if self.finished is not None and self.finished.stats:
            choice["thinkserve"] = self.figures()     # the research figures, as on the Anthropic side
        return choice


class Completion:
    """The fields every object of one completion shares, and the objects themselves."""

    def __init__(self, model: str):
        self.id = new_id("chatcmpl-")
        self.created = int(time.time())
        self.model = model

    def _head(self, kind: str) -> dict:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": None}

    def whole(self, choices: list[ChoiceAssembler]) -> dict:
        finished = [c.finished for c in choices if c.finished is not None]
        usage = finished_usage(finished) if finished else None
        return {**self._head("chat.completion"), "choices": [c.choice() for c in choices], "usage": usage}

    def chunk(self, index: int, delta: dict, finish_reason: str | None = None, *, usage: bool = False,
              logprobs: dict | None = None) -> dict:
        chunk = {**self._head("chat.completion.chunk"),
                 "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}]}
        if usage:
            chunk["usage"] = None        # with include_usage, every chunk carries it; only the last one is set
        return chunk

    def usage_chunk(self, finished: list[Finished]) -> dict:
        return {**self._head("chat.completion.chunk"), "choices": [], "usage": finished_usage(finished)}
