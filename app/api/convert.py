"""Anthropic request → engine GenerationRequest.

The model's chat template decides how the prompt looks; here we only turn Anthropic's content blocks into the
chat messages that templates take (transformers' convention): one system prompt first, then alternating turns,
with a final assistant turn becoming the prefill that the model continues. `tool_use` blocks become the assistant
turn's `tool_calls`, and each `tool_result` a `role: "tool"` message ahead of its user turn's text; the engine
renders both in the served model's own tool format.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..config import DEFAULT_EFFORT_BUDGETS
from ..engine.request import GenerationRequest, Sampling, ThinkingSettings, ToolChoice
from ..engine.tools.answer_format import answer_schema_problems, strict_tool_problems
from .citations import cite_sources
from .citations.history import joined_cited_answers
from .citations.layout import search_result_text
from .documents import document_text
from .errors import InvalidRequestError
from .images import RequestImages
from .signatures import InvalidSignature, ThinkingSigner
from .url_fetch import UrlFetcher
from .schema import CountTokensRequest, MessagesRequest


# Claude Code's first system block, `x-anthropic-billing-header: cc_version=…; cc_entrypoint=…; [cch=…;]`, is
# metadata for Anthropic's billing, not an instruction. Its value changes between sessions (and, with `cch`, on
# every request), so passed on as prompt text it would sit in the first line the model reads: noise to a small
# model, and a different prefix each time, so no prefix-cache entry could ever be reused across sessions.
_BILLING_HEADER = re.compile(r"\s*x-anthropic-billing-header:[^\n]*\s*")


def _system_prompt(request: CountTokensRequest, options: Conversion, images: RequestImages) -> str:
    parts = []
    if isinstance(request.system, str):
        parts.append(request.system)
    elif request.system:
        parts.extend(block.text for block in request.system if not _BILLING_HEADER.fullmatch(block.text))
    # A role "system" message inside messages (Claude Code sends one) joins the system prompt: merging is what
    # models handle best, and many chat templates reject a system turn anywhere but first.
    for index, message in enumerate(request.messages):
        if message.role == "system":
            parts.extend(_block_texts(enumerate(message.content), where=f"messages.{index}", options=options,
                                      thinking=[], images=images))
    return "\n\n".join(p for p in parts if p)


def _tool_message(block, path: str, calls_before: dict[str, str], images: RequestImages) -> dict:
    """A tool_result block as a `role: "tool"` message. It must answer a call of the assistant turn before it."""
    name = calls_before.get(block.tool_use_id)
    if name is None:
        raise InvalidRequestError(f"{path}: unexpected `tool_use_id` found in `tool_result` blocks: "
                                  f"{block.tool_use_id}. Each `tool_result` block must have a corresponding "
                                  f"`tool_use` block in the previous message.")
    if block.content is None or isinstance(block.content, str):
        body = block.content or ""
    else:
        body = "\n".join(_part_text(part, f"{path}.content.{i}", images) for i, part in enumerate(block.content))
    return {"role": "tool", "tool_call_id": block.tool_use_id, "name": name, "content": body,
            "is_error": bool(block.is_error)}


def _tool_call(block) -> dict:
    return {"id": block.id, "type": "function", "function": {"name": block.name, "arguments": block.input}}


def _part_text(part, path: str, images: RequestImages) -> str:
    if part.type == "text":
        return part.text
    if part.type == "search_result":
        return search_result_text(part)            # citable ones are numbered text by now (`citations`)
    if part.type == "tool_reference":
        return f"[tool {part.tool_name} is now available]"
    if part.type == "document":
        return document_text(part, path, images.fetcher)    # PDF and text documents work on every model
    if part.type == "image":
        return images.marker_for(part, path)        # a 400 naming the model, if it cannot see images
    raise InvalidRequestError(f"{path}: {part.type} content is not supported here")


@dataclass(frozen=True)
class Conversion:
    """What conversion needs from the server: the model's abilities, the signer, and the thinking defaults."""
    signer: ThinkingSigner
    accepts_images: bool = False
    model_id: str = "the served model"
    url_fetcher: UrlFetcher | None = None        # None: url sources are refused (--allow-url-fetch turns it on)
    adaptive_thinking_budget: int = 1024
    # output_config.effort → the adaptive thinking budget (--effort-budgets).
    effort_budgets: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_EFFORT_BUDGETS))


def _verified_thinking(block, path: str, signer: ThinkingSigner) -> str:
    if block.type == "redacted_thinking":
        return ""    # accepted, never rendered: its content is opaque by definition
    try:
        return signer.recover(block.thinking, block.signature)
    except InvalidSignature as exc:
        raise InvalidRequestError(f"{path}: invalid thinking block: {exc}") from None


def _block_texts(numbered_blocks, *, where: str, options: Conversion, thinking: list[str],
                 images: RequestImages) -> list[str]:
    """numbered_blocks: (position in the client's content array, block) pairs, so errors name the client's path.
    Verified thinking texts are appended to `thinking`; the caller decides whether the model sees them.
    tool_use and tool_result blocks are the caller's (`_turns`)."""
    texts = []
    for index, block in numbered_blocks:
        path = f"{where}.content.{index}"
        if block.type in ("tool_use", "tool_result"):
            continue
        if block.type in ("thinking", "redacted_thinking"):
            text = _verified_thinking(block, path, options.signer)
            if text:
                thinking.append(text)
        else:
            texts.append(_part_text(block, path, images))
    return texts


def _only_tool_results(message) -> bool:
    return message.role == "user" and all(block.type == "tool_result" for block in message.content)


def _turns(request: CountTokensRequest, options: Conversion, images: RequestImages,
           show_all_thinking: bool = False) -> list[dict]:
    # The model sees earlier reasoning only for the latest assistant turn inside a tool loop (every later user
    # turn only returns tool results), as Anthropic and the Qwen3 / DeepSeek templates do; `show_all_thinking`:
    # for every turn whose thinking blocks are still there (context editing's clear_thinking chose which stay).
    conversation = [m for m in request.messages if m.role != "system"]
    loop_turn = None
    for message in reversed(conversation):
        if message.role == "assistant":
            loop_turn = message
            break
        if not _only_tool_results(message):
            break
    turns: list[dict] = []
    calls_before: dict[str, str] = {}          # the previous assistant turn's tool_use ids → tool names
    for index, message in enumerate(request.messages):
        if message.role == "system":
            continue
        where = f"messages.{index}"
        if message.role == "assistant":
            for i, block in enumerate(message.content):
                if block.type == "image":
                    # A model writes no images: one in its own turn would be a prompt it never produced.
                    raise InvalidRequestError(f"{where}.content.{i}: images can only be sent in user turns")
        # tool_result blocks lead their user turn, as Anthropic requires and templates expect.
        turns.extend(_tool_message(block, f"{where}.content.{i}", calls_before, images)
                     for i, block in enumerate(message.content) if block.type == "tool_result")
        calls = [_tool_call(block) for block in message.content if block.type == "tool_use"]
        thinking: list[str] = []
        text = "\n\n".join(_block_texts(enumerate(message.content), where=where, options=options,
                                         thinking=thinking, images=images))
        if message.role == "assistant":
            calls_before = {call["id"]: call["function"]["name"] for call in calls}
        if text or calls or not any(block.type == "tool_result" for block in message.content):
            _append_turn(turns, {"role": message.role, "content": text, **({"tool_calls": calls} if calls else {})})
        if thinking and (message is loop_turn or (show_all_thinking and message.role == "assistant")):
            # Two assistant messages in a row are one turn (merged above): its reasoning is both of theirs.
            turns[-1]["reasoning_content"] = "\n\n".join([*filter(None, [turns[-1].get("reasoning_content")]),
                                                          *thinking])
    return turns


def _append_turn(turns: list[dict], turn: dict) -> None:
    """Consecutive turns of one role are merged: templates expect the roles to alternate."""
    last = turns[-1] if turns else None
    if last is None or last["role"] != turn["role"]:
        turns.append(turn)
        return
    last["content"] = "\n\n".join(t for t in (last["content"], turn["content"]) if t)
    if turn.get("tool_calls"):
        last["tool_calls"] = [*last.get("tool_calls", []), *turn["tool_calls"]]


def _thinking_settings(request: CountTokensRequest, options: Conversion) -> ThinkingSettings | None:
    thinking = request.thinking
    if thinking is None or thinking.type == "disabled":
        return None
    max_tokens = getattr(request, "max_tokens", None)
    effort = None
    if thinking.type == "adaptive":
        # output_config.effort sizes adaptive thinking (the table of --effort-budgets); an explicit budget_tokens
        # (type "enabled") is taken as given, and without thinking effort changes nothing.
        effort = request.effort
        budget = options.effort_budgets[effort] if effort else options.adaptive_thinking_budget
        if max_tokens is not None:
            # Adaptive thinking is the model's to size, not a reason to spend the whole output on it: at most half of
            # max_tokens, so a client with a small output cap (Claude Code with CLAUDE_CODE_MAX_OUTPUT_TOKENS) still
            # gets an answer or a tool call.
            budget = min(budget, max_tokens // 2)
    else:
        budget = thinking.budget_tokens
    if budget < 1:
        raise InvalidRequestError("max_tokens: thinking needs max_tokens of at least 2")
    min_tokens = thinking.min_tokens or 0
    if min_tokens > budget:
        raise InvalidRequestError(f"thinking.min_tokens: {min_tokens} is more than the thinking budget ({budget})")
    return ThinkingSettings(budget_tokens=budget, min_tokens=min_tokens, effort=effort,
                            prefill=thinking.prefill or "", prefill_closed=thinking.prefill_closed)


def _answer_schema(request: CountTokensRequest, prefill: str) -> dict | None:
    """The answer format's schema, checked here (so count_tokens and render refuse what messages would): the
    grammar must be able to enforce all of it, and it cannot start in the middle of a prefilled answer."""
    answer_format = request.answer_format()
    if answer_format is None:
        return None
    path, schema = answer_format
    problems = answer_schema_problems(schema)
    if problems:
        raise InvalidRequestError(f"{path}: this schema cannot be enforced by the grammar: {'; '.join(problems)}")
    if prefill:
        raise InvalidRequestError("messages: an assistant prefill cannot be combined with an output format; "
                                  "the conversation must end with a user message")
    return schema


def _check_strict_tools(tools: tuple[dict, ...]) -> None:
    for index, problem in strict_tool_problems(tools):
        raise InvalidRequestError(f"tools.{index}.input_schema: strict tool: this schema cannot be enforced by the "
                                  f"grammar: {problem}")


def _tool_choice(request: CountTokensRequest) -> ToolChoice:
    choice = request.tool_choice
    if choice is None:
        return ToolChoice()
    if choice.type in ("any", "tool") and not request.tools:
        raise InvalidRequestError(f"tool_choice: {choice.type!r} needs tools: the request has none")
    return ToolChoice(mode=choice.type, name=choice.name if choice.type == "tool" else None,
                      disable_parallel=bool(choice.disable_parallel_tool_use))


def to_generation_request(request: CountTokensRequest, options: Conversion, *,
                          show_all_thinking: bool = False) -> GenerationRequest:
    images = RequestImages(options.model_id, options.accepts_images, options.url_fetcher)
    request = joined_cited_answers(request)                 # an earlier cited answer reads as one text
    cited = cite_sources(request, options.url_fetcher)     # None: no citations, the request as it is
    if cited is not None:
        request = cited.request
    turns = _turns(request, options, images, show_all_thinking)
    thinking = _thinking_settings(request, options)
    prefill = ""
    if turns and turns[-1]["role"] == "assistant":
        if turns[-1].get("tool_calls"):
            raise InvalidRequestError("messages: the conversation ends with tool_use blocks; send their "
                                      "tool_result blocks in a final user message")
        prefill = turns.pop()["content"]
        if prefill != prefill.rstrip():
            raise InvalidRequestError("messages: final assistant content cannot end with trailing whitespace")
        if prefill and thinking is not None:
            raise InvalidRequestError("messages: an assistant prefill cannot be combined with thinking; "
                                      "the conversation must end with a user message")
    system = _system_prompt(request, options, images)
    if cited is not None:
        system = "\n\n".join(part for part in (system, cited.instructions) if part)
    messages = ([{"role": "system", "content": system}] if system else []) + turns
    tools = tuple({"type": "function", "function": {"name": t.name, "description": t.description or "",
                                                     "parameters": t.input_schema,
                                                     **({"strict": True} if t.strict else {})}}
                  for t in request.tools or [])
    _check_strict_tools(tools)
    settings = {"messages": tuple(messages), "prefill": prefill, "thinking": thinking, "tools": tools,
                "output_schema": _answer_schema(request, prefill),
                "tool_choice": _tool_choice(request),
                "images": tuple(images.images), "image_nonce": images.nonce if images.images else "",
                "citations": cited.citations if cited is not None else ()}
    if isinstance(request, MessagesRequest):
        settings.update(max_new_tokens=request.max_tokens, stop_sequences=tuple(request.stop_sequences or ()),
                        sampling=Sampling(temperature=1.0 if request.temperature is None else request.temperature,
                                          top_p=request.top_p, top_k=request.top_k,
                                          seed=request.thinkserve.seed if request.thinkserve else None),
                        logprobs=request.thinkserve.logprobs if request.thinkserve else None)
    return GenerationRequest(**settings)
