"""Engine events → OpenAI's Responses shapes: the `response` object and its typed stream events.

One `OutputAssembler` turns the events into output items, and says, for each event, which stream events it adds; a
plain response runs the same assembler and keeps only the items, so streamed and plain answers hold the same output.

Output items, in the order the model produced them:
- `reasoning` (`rs_…`): the thinking, whole, as `content: [{"type": "reasoning_text"}]` (streamed as
  `response.reasoning_text.delta`, as vLLM does for open models); `summary` stays empty: the thinking is not
  summarised by anyone;
- `message` (`msg_…`): one `output_text` part;
- `function_call` (`fc_…`, `call_id` `call_…`, the same 24 characters as chat's call ids), with `namespace` when
  the function came in a namespace tool.
"""
from __future__ import annotations

import time

from ...engine.events import (BlockEnd, Finished, TextDelta, ThinkingDelta, ToolArgsDelta, ToolCallStart,
                              Usage)
from ...service.ids import new_id
from .assemble import call_id, client_figures
from .responses_schema import NamedFunction, ResponsesRequest


def usage_json(usage: Usage, reasoning_tokens: int) -> dict:
    return {"input_tokens": usage.prompt_tokens,
            # Nothing marks a prompt for caching here (every prompt is cached): no tokens are written "for" it.
            "input_tokens_details": {"cached_tokens": usage.cached_prompt_tokens, "cache_write_tokens": 0},
            "output_tokens": usage.output_tokens, "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": usage.prompt_tokens + usage.output_tokens}


class OutputAssembler:
    """The output items of one response, built from engine events. `feed` returns the stream events (each a dict
    with its `type`, without `sequence_number`: the writer numbers them) that the event adds."""

    def __init__(self, namespaces: dict[str, str] | None = None):
        self.namespaces = namespaces or {}     # function name → the namespace tool it came in
        self.items: list[dict] = []
        self.open: dict | None = None          # the item being produced
        self.finished: Finished | None = None

    def _start(self, item: dict, part: dict | None) -> list[dict]:
        self.items.append(item)
        self.open = item
        # As added, the item is empty: its text or arguments arrive as deltas.
        added = {**item, "status": "in_progress", **({"content": []} if "content" in item else {})}
        events = [{"type": "response.output_item.added", "output_index": len(self.items) - 1, "item": added}]
        if part is not None:
            item["content"].append(part)
            events.append({"type": "response.content_part.added", **self._where(), "part": dict(part)})
        return events

    def _where(self) -> dict:
        """Where the open item's events point: its id, its place in the output, and its one content part."""
        where = {"item_id": self.open["id"], "output_index": len(self.items) - 1}   # the open item is the last
        return {**where, "content_index": 0} if self.open["type"] != "function_call" else where

    def _close(self, status: str = "completed") -> list[dict]:
        if self.open is None:
            return []
        where, item, self.open = self._where(), self.open, None
        item["status"] = status
        events = []
        if item["type"] == "message":
            part = item["content"][0]
            events += [{"type": "response.output_text.done", **where, "text": part["text"], "logprobs": []},
                       {"type": "response.content_part.done", **where, "part": dict(part)}]
        elif item["type"] == "reasoning":
            part = item["content"][0]
            events += [{"type": "response.reasoning_text.done", **where, "text": part["text"]},
                       {"type": "response.content_part.done", **where, "part": dict(part)}]
        else:
            events.append({"type": "response.function_call_arguments.done", **where, "name": item["name"],
                           "arguments": item["arguments"]})
        events.append({"type": "response.output_item.done", "output_index": where["output_index"],
                       "item": {**item, **({"content": [dict(p) for p in item["content"]]} if "content" in item
                                           else {})}})
        return events

    def cut_off(self) -> None:
        """Generation failed: the item being produced ends here, incomplete (no events: the response fails)."""
        if self.open is not None:
            self.open["status"] = "incomplete"
            self.open = None

    def _open_kind(self, kind: str) -> dict | None:
        return self.open if self.open is not None and self.open["type"] == kind else None

    def feed(self, event) -> list[dict]:
        if isinstance(event, ThinkingDelta) and event.text:
            events = [] if self._open_kind("reasoning") else self._close() + self._start(
                {"id": new_id("rs_"), "type": "reasoning", "summary": [], "content": []},
                {"type": "reasoning_text", "text": ""})
            self.open["content"][0]["text"] += event.text
            return events + [{"type": "response.reasoning_text.delta", **self._where(), "delta": event.text}]
        if isinstance(event, TextDelta) and event.text:
            events = [] if self._open_kind("message") else self._close() + self._start(
                {"id": new_id("msg_"), "type": "message", "role": "assistant", "content": []},
                {"type": "output_text", "text": "", "annotations": [], "logprobs": []})
            self.open["content"][0]["text"] += event.text
            return events + [{"type": "response.output_text.delta", **self._where(), "delta": event.text,
                              "logprobs": []}]
        if isinstance(event, ToolCallStart):
            namespace = self.namespaces.get(event.name)
            return self._close() + self._start({"id": "fc_" + event.call_id, "type": "function_call",
                                                "call_id": call_id(event.call_id), "name": event.name,
                                                **({"namespace": namespace} if namespace else {}),
                                                "arguments": ""}, None)
        if isinstance(event, ToolArgsDelta) and event.partial_json and self._open_kind("function_call"):
            self.open["arguments"] += event.partial_json
            return [{"type": "response.function_call_arguments.delta", **self._where(),
                     "delta": event.partial_json}]
        if isinstance(event, BlockEnd):
            return self._close()
        if isinstance(event, Finished):
            self.finished = event
            # An item the output cap cut off is incomplete, as the response is.
            return self._close("incomplete" if event.stop_reason.cut_off else "completed")
        return []


class ResponseObject:
    """The fields every snapshot of one response shares (the request's settings echoed, as OpenAI does), and the
    snapshots themselves: in progress, completed, incomplete or failed."""

    def __init__(self, request: ResponsesRequest):
        self.id = new_id("resp_")
        self.created_at = int(time.time())
        self.request = request

    def _echo(self) -> dict:
        request = self.request
        choice = request.tool_choice
        text_format = request.format.model_dump(by_alias=True, exclude_none=True) if request.format \
            else {"type": "text"}
        return {"instructions": request.instructions, "max_output_tokens": request.max_output_tokens,
                "model": request.model, "parallel_tool_calls": request.parallel_tool_calls is not False,
                "previous_response_id": None,
                "reasoning": {"effort": request.effort, "summary": None},
                "store": False,              # nothing is kept, whatever the request said (README)
                "temperature": 1.0 if request.temperature is None else request.temperature,
                "text": {"format": text_format},
                "tool_choice": choice.model_dump() if isinstance(choice, NamedFunction) else (choice or "auto"),
                "tools": [tool.model_dump(by_alias=True, exclude_none=True) for tool in request.tools or []],
                "top_p": 1.0 if request.top_p is None else request.top_p, "truncation": "disabled"}

    def snapshot(self, status: str, output: OutputAssembler | None = None, *, error: dict | None = None) -> dict:
        finished = output.finished if output is not None else None
        body = {"id": self.id, "object": "response", "created_at": self.created_at, "status": status,
                "background": False, "error": error,
                "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
                **self._echo(), "output": output.items if output is not None else [],
                "usage": None, "metadata": {}, "user": None}
        if status == "completed":
            body["completed_at"] = int(time.time())
        if finished is not None:
            stats = finished.stats or {}
            body["usage"] = usage_json(finished.usage, int(stats.get("thinking_tokens", 0) or 0))
            if stats:
                body["thinkserve"] = client_figures(stats)     # the research figures, as on the other endpoints
        return body

    def final(self, output: OutputAssembler) -> dict:
        reason = output.finished.stop_reason if output.finished is not None else None
        return self.snapshot("incomplete" if reason is not None and reason.cut_off else "completed", output)
