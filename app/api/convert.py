"""Anthropic request → engine GenerationRequest.

The model's chat template decides how the prompt looks; here we only turn Anthropic's content blocks into the
plain chat messages that templates take: one system prompt first, then alternating turns, with a final
assistant turn becoming the prefill that the model continues.
"""
from __future__ import annotations

import json

from ..engine.request import GenerationRequest, Sampling, ThinkingSettings
from .errors import InvalidRequestError
from .schema import CountTokensRequest, MessagesRequest

# Used when a template has no tool-call format of its own; the tools issue refines this per model family.
TOOL_CALL_FORMAT = "<tool_call>\n{payload}\n</tool_call>"


def _system_prompt(request: CountTokensRequest) -> str:
    parts = []
    if isinstance(request.system, str):
        parts.append(request.system)
    elif request.system:
        parts.extend(block.text for block in request.system)
    # A role "system" message inside messages (Claude Code sends one) joins the system prompt: merging is what
    # models handle best, and many chat templates reject a system turn anywhere but first.
    for index, message in enumerate(request.messages):
        if message.role == "system":
            parts.extend(_block_texts(enumerate(message.content), where=f"messages.{index}"))
    return "\n\n".join(p for p in parts if p)


def _tool_result_text(block, path: str) -> str:
    if block.content is None or isinstance(block.content, str):
        body = block.content or ""
    else:
        body = "\n".join(_part_text(part, f"{path}.content.{i}") for i, part in enumerate(block.content))
    status = ' is_error="true"' if block.is_error else ""
    return f'<tool_result tool_use_id="{block.tool_use_id}"{status}>\n{body}\n</tool_result>'


def _part_text(part, path: str) -> str:
    if part.type == "text":
        return part.text
    if part.type == "search_result":
        return f"{part.title} ({part.source})\n" + "\n".join(t.text for t in part.content)
    if part.type == "tool_reference":
        return f"[tool {part.tool_name} is now available]"
    raise InvalidRequestError(f"{path}: {part.type} content is not supported by this text-only model")


def _block_texts(numbered_blocks, *, where: str, accepts_images: bool = False) -> list[str]:
    """numbered_blocks: (position in the client's content array, block) pairs, so errors name the client's path."""
    texts = []
    for index, block in numbered_blocks:
        path = f"{where}.content.{index}"
        if block.type in ("image", "document") and not accepts_images:
            raise InvalidRequestError(f"{path}: {block.type} blocks are not supported: "
                                      f"the served model reads text only")
        if block.type == "tool_use":
            payload = json.dumps({"name": block.name, "arguments": block.input}, ensure_ascii=False)
            texts.append(TOOL_CALL_FORMAT.format(payload=payload))
        elif block.type == "tool_result":
            texts.append(_tool_result_text(block, path))
        elif block.type in ("thinking", "redacted_thinking"):
            continue   # earlier reasoning is not re-shown to the model (templates drop it too)
        else:
            texts.append(_part_text(block, path))
    return texts


def _turns(request: CountTokensRequest, accepts_images: bool) -> list[dict]:
    turns: list[dict] = []
    for index, message in enumerate(request.messages):
        if message.role == "system":
            continue
        # tool_result blocks lead their user turn, as Anthropic requires and templates expect.
        blocks = sorted(enumerate(message.content), key=lambda pair: pair[1].type != "tool_result")
        text = "\n\n".join(_block_texts(blocks, where=f"messages.{index}", accepts_images=accepts_images))
        if turns and turns[-1]["role"] == message.role:
            turns[-1]["content"] = "\n\n".join(t for t in (turns[-1]["content"], text) if t)
        else:
            turns.append({"role": message.role, "content": text})
    return turns


def to_generation_request(request: CountTokensRequest, *, accepts_images: bool = False) -> GenerationRequest:
    turns = _turns(request, accepts_images)
    prefill = ""
    if turns and turns[-1]["role"] == "assistant":
        prefill = turns.pop()["content"]
        if prefill != prefill.rstrip():
            raise InvalidRequestError("messages: final assistant content cannot end with trailing whitespace")
    system = _system_prompt(request)
    messages = ([{"role": "system", "content": system}] if system else []) + turns
    settings = {"messages": tuple(messages), "prefill": prefill,
                "tools": tuple({"type": "function", "function": {"name": t.name, "description": t.description or "",
                                                                  "parameters": t.input_schema}}
                               for t in request.tools or [])}
    if isinstance(request, MessagesRequest):
        settings.update(max_new_tokens=request.max_tokens, stop_sequences=tuple(request.stop_sequences or ()),
                        sampling=Sampling(temperature=1.0 if request.temperature is None else request.temperature,
                                          top_p=request.top_p, top_k=request.top_k))
    thinking = request.thinking
    if thinking is not None and thinking.type == "enabled":
        settings["thinking"] = ThinkingSettings(budget_tokens=thinking.budget_tokens,
                                                min_tokens=thinking.min_tokens or 0)
    return GenerationRequest(**settings)
