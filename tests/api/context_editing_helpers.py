"""What the context editing tests share: an engine whose prompt shows what the edits change, and histories to edit."""
from __future__ import annotations

import json

from app.api.context_editing.clearing import CLEARED_TOOL_RESULT
from app.engine.errors import NotReadyError

from api_helpers import body
from fake_engine import FakeEngine

BETA = "context-management-2025-06-27"
CLEAR_TOOL_USES = "clear_tool_uses_20250919"
CLEAR_THINKING = "clear_thinking_20251015"
TOOLS = [{"name": name, "input_schema": {"type": "object"}} for name in ("read", "search")]
RESULT_WORDS = 10
# A result is "result<i>" and RESULT_WORDS words; the placeholder is shorter by this many tokens (one per word).
FREED_PER_RESULT = 1 + RESULT_WORDS - len(CLEARED_TOOL_RESULT.split())
FREED_PER_INPUT = 1        # {"path": "file<i>"} (2 words) becomes {} (1)


class TranscriptEngine(FakeEngine):
    """FakeEngine (one token per word) that also renders what context editing changes and FakeEngine leaves out:
    each tool call with its arguments (`<call> name {json}`) and each turn's reasoning (`<think> … </think>`)."""

    def render_prompt(self, request) -> str:
        if not self.ready:
            raise NotReadyError("loading")
        lines = []
        for message in request.messages:
            parts = [f"<{message['role']}>"]
            if message.get("reasoning_content"):
                parts.append(f"<think> {message['reasoning_content']} </think>")
            if message["content"]:
                parts.append(message["content"])
            parts += [f"<call> {call['function']['name']} {json.dumps(call['function']['arguments'])}"
                      for call in message.get("tool_calls", ())]
            lines.append(" ".join(parts))
        return "\n".join(lines) + "\n<assistant> " + request.prefill


def tool_history(names: list[str], result_words: int = RESULT_WORDS) -> list[dict]:
    """A user task, then one tool use/result pair per name, oldest first: `toolu_<i>` calls names[i] with
    {"path": "file<i>"} and is answered by "result<i>" and `result_words` more words."""
    messages = [{"role": "user", "content": "Inspect the files."}]
    for i, name in enumerate(names):
        messages.append({"role": "assistant", "content": [
            {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": {"path": f"file{i}"}}]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": " ".join([f"result{i}"] +
                                                                                     ["word"] * result_words)}]})
    return messages


def thought(i: int) -> str:
    return f"thought{i} one two three"


def thinking_block(signer, i: int) -> dict:
    return {"type": "thinking", "thinking": thought(i), "signature": signer.sign(thought(i))}


# "<think> thought<i> one two three </think>": what one turn's thinking adds to the fake prompt.
THINKING_TOKENS = 2 + len(thought(0).split())


def thinking_history(signer, turns: int = 3) -> list[dict]:
    """`turns` question/answer turns, each answer with a signed thinking block, and a last question."""
    messages = []
    for i in range(turns):
        messages.append({"role": "user", "content": f"question{i}"})
        messages.append({"role": "assistant", "content": [thinking_block(signer, i),
                                                          {"type": "text", "text": f"answer{i}"}]})
    messages.append({"role": "user", "content": "last question"})
    return messages


def clear_tools(**options) -> dict:
    return {"edits": [{"type": CLEAR_TOOL_USES, **options}]}


def clear_thinking(**options) -> dict:
    return {"edits": [{"type": CLEAR_THINKING, **options}]}


def tool_uses(value: int) -> dict:
    return {"type": "tool_uses", "value": value}


def input_tokens(value: int) -> dict:
    return {"type": "input_tokens", "value": value}


def create(client, messages, context_management=None, **fields) -> dict:
    """POST /v1/messages (non-streaming) with TOOLS; the Message."""
    payload = body(messages=messages, tools=TOOLS, **fields)
    if context_management is not None:
        payload["context_management"] = context_management
    response = client.post("/v1/messages", json=payload, headers={"anthropic-beta": BETA})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def count(client, messages, context_management=None, **fields) -> dict:
    """POST /v1/messages/count_tokens with TOOLS; its JSON."""
    payload = body(messages=messages, tools=TOOLS, max_tokens=..., **fields)
    if context_management is not None:
        payload["context_management"] = context_management
    response = client.post("/v1/messages/count_tokens", json=payload)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()

