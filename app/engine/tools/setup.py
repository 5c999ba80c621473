"""What one request needs for tools and an answer format: the grammar's logits processor, the output parser for
calls (or for the JSON answer), the stop reason, and the check of every call's input, and of the JSON answer,
against its schema once generation is over.

With thinking, the grammar waits: it starts once the thinking budget has found the section closed
(`RequestThinking.answer_started`), so the thinking section is free text and the grammar chooses the first token
after `</think>`.

The failure policy (the README documents it): the grammar makes a call's input satisfy its schema, except for the
keywords it does not enforce (logged when the request arrives) and a call cut short by max_tokens. Every call is
checked with jsonschema; one that fails is still returned (a stream has already sent it, and a client such as
Claude Code answers a bad input with an error tool_result the model can act on), but never silently: the failures
are logged and reported in the response's `thinkserve.tool_input_errors`. A JSON answer (`output_config.format`) is
held to the same standard: the grammar makes it valid unless it was cut short, and `thinkserve.output_format` says
whether it parsed and satisfied its schema.

With citations (`engine.citations`), the answer's text also passes through the mark parser, which takes the marks
out and reports each as a `CitationMark`; a request with citations and no tools gets a grammar all the same.
"""
from __future__ import annotations

import logging
from collections.abc import Collection

from ..citations.markers import CitationMarkParser
from ..events import StopReason
from ..thinking.setup import RequestThinking
from .answer_format import AnswerOrCallsParser, AnswerTextParser, answer_errors
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
        # With thinking, the grammar starts with the first token after the section: the budget, which runs before
        # it in the row, has found it closed in that same step.
        self.processor: ToolGrammarProcessor = make_tool_logits_processor(
            grammar, end_of_turn_ids, start_after=thinking.answer_started if thinking.budget is not None else None)
        # Held to the grammar, calls cannot be malformed, so their arguments stream as they are generated.
        self.native_parser = ToolCallParser(grammar.format, tool_names=self.schemas)
        # What finds the calls (or the JSON answer) in the answer's text.
        self.calls_parser: ToolCallParser | RecoveringToolCallParser | AnswerTextParser | AnswerOrCallsParser = \
            self.native_parser
        self.answer: AnswerTextParser | None = None      # the JSON answer's parser, with an answer format
        if grammar.answer_schema is not None:
            if self.schemas and grammar.choice.mode == "auto":
                self.calls_parser = AnswerOrCallsParser(self.native_parser, grammar.format.trigger)
                self.answer = self.calls_parser.answer
            else:                                    # no tools, or tool_choice none: the answer is the JSON
                self.calls_parser = self.answer = AnswerTextParser()
        elif not self.schemas:
            self.calls_parser = AnswerTextParser()    # citations without tools: text with no calls in it
        # A drifted call is recovered at the start of the answer only; a prefill with text has started it already.
        elif grammar.recovery is not None and not prefill.strip():
            self.calls_parser = RecoveringToolCallParser(
                self.native_parser, grammar.format,
                take_over=lambda written: self.processor.take_over(grammar.recovery, written))
        # What the output pipeline feeds the answer to: the calls parser, behind the mark parser with citations.
        self.citation_parser = CitationMarkParser(self.calls_parser, grammar.citations) if grammar.citations else None
        self.parser = self.citation_parser or self.calls_parser

    def stop_reason(self, reason: StopReason) -> StopReason:
        """A turn that ends after a call ends for the tool (`tool_use`); a cut-off one still ran out of tokens."""
        return StopReason.TOOL_CALL if reason == StopReason.END and self.calls_parser.made_call else reason

    def stats(self) -> dict:
        """Figures for the response's `thinkserve` extension, with any call whose input breaks its schema, and
        whether a JSON answer satisfies its format."""
        figures = {"cache_hit": self.grammar.cache_hit, "compile_ms": round(self.grammar.compile_seconds * 1000, 2),
                   "tokens_constrained": self.processor.tokens_constrained,
                   "tokens_forced": self.processor.tokens_forced}
        stats = {}
        if self.schemas:
            stats["tool_grammar"] = {"mode": self.grammar.choice.mode, **figures,
                                     "recovered": self.processor.taken_over}
        if self.answer is not None:
            stats["output_format"] = self.answer_stats(figures)
        if self.citation_parser is not None:
            # The grammar's figures go here when there is no tool_grammar entry to hold them.
            stats["citations"] = {"passages": self.grammar.citations, "marks": self.citation_parser.marks,
                                  **({} if self.schemas else figures)}
        if self.calls_parser.calls:
            # How each call was opened ("native", or the drift it was recovered from): how often a model drifts.
            recovering = isinstance(self.calls_parser, RecoveringToolCallParser)
            stats["tool_call_forms"] = self.calls_parser.forms() if recovering \
                else ["native"] * len(self.calls_parser.calls)
        errors = self.input_errors()
        if errors:
            stats["tool_input_errors"] = errors
        return stats

    def answer_stats(self, figures: dict) -> dict:
        """The JSON answer's figures: "calls" when the model answered with tool calls instead (auto), else whether
        the text parsed and satisfied the schema, with the errors when it did not."""
        if isinstance(self.calls_parser, AnswerOrCallsParser) and self.calls_parser.answered_with_calls:
            return {"answer": "calls", **figures}
        errors = answer_errors(self.grammar.answer_schema, self.answer.text)
        if errors:
            log.warning("The JSON answer does not satisfy its output format: %s", "; ".join(errors))
        return {"answer": "json", "valid": not errors, **({"errors": errors} if errors else {}), **figures}

    def input_errors(self) -> list[dict]:
        failures = []
        for call in self.calls_parser.calls:
            problems = validate_tool_input(self.schemas[call.name], call.input)
            if not call.complete:
                problems.insert(0, "the output ended before the call was complete; its JSON was closed early")
            if problems:
                log.warning("Tool call %s (%s) does not satisfy its input_schema: %s", call.call_id, call.name,
                            "; ".join(problems))
                failures.append({"id": call.call_id, "name": call.name, "errors": problems})
        return failures

