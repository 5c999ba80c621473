"""What one request needs for tools: the grammar's logits processor, the output parser for calls, the stop reason,
and the check of every call's input against its schema once generation is over.

With thinking, the grammar waits: it is built inactive and the thinking budget's `on_close` activates it, so the
thinking section is free text and the grammar chooses the first token after `</think>`.

The failure policy (the README documents it): the grammar makes a call's input satisfy its schema, except for the
keywords it does not enforce (logged when the request arrives) and a call cut short by max_tokens. Every call is
checked with jsonschema; one that fails is still returned (a stream has already sent it, and a client such as
Claude Code answers a bad input with an error tool_result the model can act on), but never silently: the failures
are logged and reported in the response's `thinkserve.tool_input_errors`.
"""
from __future__ import annotations

import logging
from collections.abc import Collection

from ..events import StopReason
from ..thinking.setup import RequestThinking
from .formats import tool_specs
from .grammar import ToolGrammar, make_tool_logits_processor
from .parser import ToolCallParser
from .processor import ToolGrammarProcessor
from .recovery import RecoveringToolCallParser
from .schema import validate_tool_input

log = logging.getLogger(__name__)


class RequestTools:
    """Built per request from the job's compiled grammar; None stands for a request without tools."""

    def __init__(self, grammar: ToolGrammar, tools, end_of_turn_ids: Collection[int], thinking: RequestThinking,
                 prefill: str = ""):
        self.grammar = grammar
        self.schemas = {spec.name: spec.input_schema for spec in tool_specs(tools)}
        self.processor: ToolGrammarProcessor = make_tool_logits_processor(grammar, end_of_turn_ids,
                                                                          active=thinking.budget is None)
        if thinking.budget is not None:
            thinking.budget.on_close = self.processor.activate
        # Held to the grammar, calls cannot be malformed, so their arguments stream as they are generated.
        self.native_parser = ToolCallParser(grammar.format, tool_names=self.schemas)
        self.parser: ToolCallParser | RecoveringToolCallParser = self.native_parser
        # A drifted call is recovered at the start of the answer only; a prefill with text has started it already.
        if grammar.recovery is not None and not prefill.strip():
            self.parser = RecoveringToolCallParser(
                self.native_parser, grammar.format,
                take_over=lambda written: self.processor.take_over(grammar.recovery, written))

    def stop_reason(self, reason: StopReason) -> StopReason:
        """A turn that ends after a call ends for the tool (`tool_use`); a cut-off one still ran out of tokens."""
        return StopReason.TOOL_CALL if reason == StopReason.END and self.parser.made_call else reason

    def stats(self) -> dict:
        """Figures for the response's `thinkserve` extension, with any call whose input breaks its schema."""
        stats = {"tool_grammar": {"mode": self.grammar.choice.mode, "cache_hit": self.grammar.cache_hit,
                                  "compile_ms": round(self.grammar.compile_seconds * 1000, 2),
                                  "tokens_constrained": self.processor.tokens_constrained,
                                  "tokens_forced": self.processor.tokens_forced,
                                  "recovered": self.processor.taken_over}}
        if self.parser.calls:
            # How each call was opened ("native", or the drift it was recovered from): how often a model drifts.
            stats["tool_call_forms"] = self.parser.forms() if isinstance(self.parser, RecoveringToolCallParser) \
                else ["native"] * len(self.parser.calls)
        errors = self.input_errors()
        if errors:
            stats["tool_input_errors"] = errors
        return stats

    def input_errors(self) -> list[dict]:
        failures = []
        for call in self.parser.calls:
            problems = validate_tool_input(self.schemas[call.name], call.input)
            if not call.complete:
                problems.insert(0, "the output ended before the call was complete; its JSON was closed early")
            if problems:
                log.warning("Tool call %s (%s) does not satisfy its input_schema: %s", call.call_id, call.name,
                            "; ".join(problems))
                failures.append({"id": call.call_id, "name": call.name, "errors": problems})
        return failures

