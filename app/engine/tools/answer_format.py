"""A JSON answer held to a schema (Anthropic's `output_config.format`), and what `strict` tools add.

The grammar (`tools.grammar.structural_tag_for`) writes the answer in the same compact JSON layout as tool
arguments. This module holds what surrounds it and needs no grammar engine:

- which schemas the grammar cannot enforce exactly. For an answer format, and for a tool marked `strict`, that is
  a 400 before generation (Anthropic refuses unsupported schema features too); for any other tool it stays a logged
  warning, as before, because every call is grammar-constrained anyway;
- the answer's parsers: the answer is text (a `TextDelta` per piece, as any answer), and with `tool_choice: auto`
  the grammar allows either the calls or the JSON, which the first non-whitespace text tells apart;
- the check after generation: the answer parsed and validated with jsonschema, so an answer cut short (max_tokens,
  a stop sequence) is reported in the response's figures rather than passed off as valid.
"""
from __future__ import annotations

import json

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ..events import Event, TextDelta
from .formats import tool_spec
from .parser import ToolCallParser
from .schema import grammar_schema, unsupported_schema_keywords, validate_tool_input


# JSON levels a schema document may nest (about 40 nested objects). xgrammar's grammar for nested objects grows with
# the square of the depth (100 nested objects: a 74 kB grammar, 0.4 s; 300: 640 kB, 13 s), and the checks below
# recurse per level: a deeper schema is refused rather than left to stall the request or overflow the stack.
MAX_SCHEMA_DEPTH = 128


def answer_schema_problems(schema) -> list[str]:
    """Why the grammar cannot hold an answer to `schema` exactly; [] when it can."""
    if not isinstance(schema, dict):
        return ["the schema must be a JSON object"]
    if _depth(schema) > MAX_SCHEMA_DEPTH:
        return [f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels"]
    try:
        Draft202012Validator.check_schema(grammar_schema(schema))
        return unsupported_schema_keywords(grammar_schema(schema))
    except SchemaError as error:
        return [f"the schema is invalid: {error.message}"]
    except RecursionError:          # a $ref cycle the walk follows, say: still the client's 400, not a 500
        return ["the schema is nested too deeply to check"]


def _depth(value) -> int:
    """How many JSON levels `value` nests, counted without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            pending.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def strict_tool_problems(tools) -> list[tuple[int, str]]:
    """(index, problem) for every `strict: true` tool whose input_schema the grammar cannot enforce exactly. Tools
    come in either accepted shape; `strict` sits beside the name (Anthropic) or inside `function` (OpenAI)."""
    problems = []
    for index, tool in enumerate(tools):
        holder = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        if holder.get("strict") is True:
            problems.extend((index, problem) for problem in answer_schema_problems(tool_spec(tool).input_schema))
    return problems


def answer_errors(schema: dict, text: str) -> list[str]:
    """Every way the answer text breaks `schema` ([] when it is valid JSON that satisfies it)."""
    try:
        value = json.loads(text)
    except ValueError as error:
        return [f"the answer is not complete JSON ({error.msg} at character {error.pos}); "
                f"it was cut short (max_tokens or a stop sequence)"]
    return validate_tool_input(schema, value)


class AnswerTextParser:
    """The answer is the JSON, as text: passed on as it comes, and kept for the check at the end. It has the
    tool parser's shape (`feed`, `flush`, `calls`, `made_call`), so it takes that parser's place in the pipeline."""

    calls: tuple = ()
    made_call = False

    def __init__(self):
        self._parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def feed(self, text: str) -> list[Event]:
        if not text:
            return []
        self._parts.append(text)
        return [TextDelta(text)]

    def flush(self) -> list[Event]:
        return []


class AnswerOrCallsParser:
    """`tool_choice: auto` with an answer format: the grammar allows one of two answers, tool calls or the JSON.
    The first text that is not whitespace tells which (the call trigger, `<tool_call>` or `[TOOL_CALLS]`, cannot
    begin a JSON value), and that parser reads the whole answer. Deciding once, at the start, keeps a JSON string
    that happens to hold the trigger text from being read as a call."""

    def __init__(self, calls: ToolCallParser, trigger: str):
        self._call_parser = calls
        self._trigger = trigger
        self.answer = AnswerTextParser()
        self._chosen: ToolCallParser | AnswerTextParser | None = None
        self._held = ""

    @property
    def calls(self):
        return self._call_parser.calls

    @property
    def made_call(self) -> bool:
        return self._call_parser.made_call

    @property
    def answered_with_calls(self) -> bool:
        return self._chosen is self._call_parser

    def feed(self, text: str) -> list[Event]:
        if self._chosen is None:
            self._held += text
            start = self._held.lstrip()
            if not start or (len(start) < len(self._trigger) and self._trigger.startswith(start)):
                return []                          # whitespace so far, or still possibly the trigger
            self._chosen = self._call_parser if start.startswith(self._trigger) else self.answer
            text, self._held = (self._held if self._chosen is self._call_parser else start), ""
        return self._chosen.feed(text)

    def flush(self) -> list[Event]:
        if self._chosen is None:
            held, self._held = self._held.lstrip(), ""
            self._chosen = self.answer
            return self.answer.feed(held)
        return self._chosen.flush()
