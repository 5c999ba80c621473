"""A request's `context_management` edits, applied before the model reads the prompt, in the order given, with
the engine's own count of the rendered prompt behind every decision and every figure: the `input_tokens`
trigger, `clear_at_least`, `cleared_input_tokens` and `original_input_tokens` are tokens of the served model.

What the prefix cache still reuses after an edit: the KV cache shares the longest run of identical leading
tokens, so the prompt up to the first cleared block (system prompt, tools, the turns before it) is read from the
cache; everything after that block is computed once, on the first request whose cleared set differs from the
previous one. The edited prompt is then cached in its turn, and the next requests reuse all of it for as long as
the cleared set stays the same (the history only grows at the end). That is why `clear_at_least` exists: each
clearing re-reads the tail of the prompt, so it should free enough to be worth it. `clear_thinking` with
`keep: "all"` changes nothing in the middle, so it never costs a re-read.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from ...engine.interface import Engine
from ...engine.prepared import PreparedPrompt
from ...engine.request import GenerationRequest
from ...service import generation as service
from ..convert import Conversion, to_generation_request
from ..schema import CountTokensRequest
from .clearing import Cleared, clear_thinking, clear_tool_uses, tool_uses
from .config import ClearThinking, ClearToolUses, parse_context_management

log = logging.getLogger(__name__)

CLEARED_COUNT_FIELD = {"clear_tool_uses_20250919": "cleared_tool_uses",
                       "clear_thinking_20251015": "cleared_thinking_turns"}


@dataclass(frozen=True)
class ContextReport:
    """What context editing did to one request."""
    original_input_tokens: int       # the prompt before any edit
    applied_edits: tuple[dict, ...]  # only the edits that cleared something, in the order they ran

    def response_json(self) -> dict:
        """A Message's (and a stream's final message_delta's) `context_management`."""
        return {"applied_edits": [dict(edit) for edit in self.applied_edits]}

    def count_tokens_json(self) -> dict:
        """count_tokens' `context_management`."""
        return {"original_input_tokens": self.original_input_tokens}


@dataclass(frozen=True)
class EditedRequest:
    """A request converted for the engine with its edits applied, and its prompt prepared once (submit it as is)."""
    generation: GenerationRequest
    prepared: PreparedPrompt
    report: ContextReport | None     # None: the request asked for no context management

    @property
    def input_tokens(self) -> int:
        return len(self.prepared.ids)


def _triggered(edit: ClearToolUses, messages, input_tokens: int) -> bool:
    # Documented: "once the prompt exceeds this threshold"; tool_uses counts every tool use in the history.
    measured = input_tokens if edit.trigger.type == "input_tokens" else len(tool_uses(messages))
    return measured > edit.trigger.value


def edit_and_prepare(engine: Engine, request: CountTokensRequest, options: Conversion) -> EditedRequest:
    """The request converted and prepared, its `context_management` edits applied first. Raises ApiError: a 400
    naming the field for an invalid edit, and whatever conversion and preparation raise."""
    config = parse_context_management((request.model_extra or {}).get("context_management"))
    # With a clear_thinking edit the client says which turns keep their thinking, and the model sees all of
    # those; without one, the converter's default stands (the latest tool-loop turn's thinking only).
    show_all_thinking = config is not None and config.clear_thinking is not None

    def prepared_for(messages) -> tuple[GenerationRequest, PreparedPrompt]:
        edited = request if messages is request.messages else request.model_copy(update={"messages": messages})
        generation = to_generation_request(edited, options, show_all_thinking=show_all_thinking)
        return generation, service.prepare(engine, generation)

    messages = request.messages
    generation, prepared = prepared_for(messages)
    if config is None:
        return EditedRequest(generation, prepared, None)
    original_tokens = len(prepared.ids)
    applied: list[dict] = []
    for edit in config.edits:
        tokens = len(prepared.ids)
        if isinstance(edit, ClearThinking):
            cleared: Cleared = clear_thinking(messages, edit)
        elif _triggered(edit, messages, tokens):
            cleared = clear_tool_uses(messages, edit)
        else:
            continue
        if not cleared.count:
            continue                                   # nothing to clear: not an applied edit
        edited_generation, edited_prepared = prepared_for(cleared.messages)
        freed = max(tokens - len(edited_prepared.ids), 0)
        if isinstance(edit, ClearToolUses) and edit.clear_at_least and freed < edit.clear_at_least.value:
            continue              # documented: if it cannot clear at least that many, the edit is not applied
        messages, generation, prepared = cleared.messages, edited_generation, edited_prepared
        applied.append({"type": edit.type, CLEARED_COUNT_FIELD[edit.type]: cleared.count,
                        "cleared_input_tokens": freed})
    if applied:
        log.info("context editing: %d prompt tokens → %d (%s)", original_tokens, len(prepared.ids),
                 ", ".join(f"{edit['type']} cleared {edit[CLEARED_COUNT_FIELD[edit['type']]]}" for edit in applied))
    return EditedRequest(generation, prepared, ContextReport(original_tokens, tuple(applied)))
