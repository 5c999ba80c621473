"""`tool_choice` as an xgrammar grammar in the model's native call syntax, compiled once per tool set.

The four modes map onto xgrammar structural tags (the same building blocks `xgr.get_model_structural_tag` uses,
assembled here from our declarative `ToolCallFormat`, so every family, `generic` included, gets all four modes):

- any:  nothing but calls (optionally after a little whitespace, e.g. the "\\n\\n" after `</think>`) — one or
        more, exactly one with disable_parallel — then only end-of-turn.
- tool: exactly one call of the named tool, then only end-of-turn. One call keeps it simple and is what a forced
        tool is for; a client that wants several calls can use `any`.
- auto: free text; once the model writes the trigger (`<tool_call>`, `[TOOL_CALLS]`, ...) the call that follows
        must be a valid call of a listed tool. With disable_parallel, the turn must end after the first call.
- none: free text in which the trigger can never appear (xgrammar excludes it across token boundaries, so a
        multi-token opener such as SmolLM2's 5-token `<tool_call>` is banned however it is spelled in tokens).

An answer format (`output_config.format`, a JSON schema for the text answer) replaces the free text: alone, or with
`none`, the answer is one JSON value of the schema, in the same compact layout as arguments; with `auto` it is either
that JSON or the calls (as `any` writes them), never both; `any` and `tool` have no text answer, so the format
changes nothing there. A request without tools but with a format gets a grammar too (and `tools.answer_format`
parses its answer).

Citations (`engine.citations`) replace the free text too: with no tools, or with `none`, the answer is citing text
(marks of existing passages only); with `auto` it is citing text, then optionally the calls (as `any` writes them).
A JSON answer, and the calls of `any` and `tool`, have no free text to cite in, so there citations change nothing.

Each call's name is one of the tool names (it is part of the literal that opens the call) and its arguments follow
the tool's input_schema. Compiling costs milliseconds to tens of milliseconds (up to ~1 s for an answer schema with
long string bounds); the result depends only on the tokenizer and (format, tool names and schemas, choice, answer
schema, whether thinking comes first), so it is cached: xgrammar's TokenizerInfo and compiler
once per tokenizer and vocab size, compiled grammars in an LRU keyed by that tuple. Per request only a matcher is
built (`make_tool_logits_processor`).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass

import torch
import xgrammar as xgr
from xgrammar.structural_tag import (AnyTextFormat, ConstStringFormat, GrammarFormat, OrFormat, RegexFormat,
                                     SequenceFormat, StructuralTag, TagFormat, TagsWithSeparatorFormat,
                                     TriggeredTagsFormat)

from ..citations.grammar import citing_text, citing_text_then_calls
from ..errors import ToolGrammarError
from ..request import ToolChoice
from .formats import ToolCallFormat, ToolSpec, tool_specs
from .processor import ToolGrammarProcessor
from .recovery import NAME_SEPARATOR
from .schema import grammar_schema, unsupported_schema_keywords

# Whitespace the grammar allows before the first call in any/tool mode: a hand-over from thinking ("</think>\n\n")
# lands here, and the parser drops whitespace-only text.
LEADING_WHITESPACE = r"[ \n]{0,2}"
# Arguments are written the way chat templates render them (`tojson`, i.e. json.dumps' ", " and ": "), with no
# other whitespace: it is what the model saw in earlier turns, it costs the fewest tokens, and free whitespace is
# the classic way a small model loops under a JSON grammar (SmolLM2 wrote "\n \n   \n" runs when allowed).
JSON_SEPARATORS = (", ", ": ")
# xgrammar 0.2.8 writes strings with minLength/maxLength as repeats of this class, which lets raw control characters
# (tab, \x01) through, invalid in JSON; they are excluded here, as its unbounded strings already do.
_LENGTH_LIMITED_STRING_CHAR = r'[^\"\\\r\n]'
_JSON_STRING_CHAR = r'[^\0-\x1f\"\\]'
COMPILED_CACHE_SIZE = 64


@dataclass(frozen=True)
class ToolGrammar:
    """A compiled tool grammar and what the caller should know about it."""
    compiled: xgr.CompiledGrammar
    vocab_size: int                    # logits columns the grammar's bitmask covers
    choice: ToolChoice
    format: ToolCallFormat
    unsupported: tuple[str, ...]       # "tool: path: keyword (why)" — log these; validate_tool_input still holds
    cache_hit: bool
    compile_seconds: float
    first_token: Callable[[str], int | None]   # the tokenizer's first token for a text (jump-forward)
    # auto only: the grammar that finishes a call the model opened in a drifted form (`tools.recovery`), from
    # just after its "name" key; None for the other modes.
    recovery: xgr.CompiledGrammar | None = None
    # The JSON schema the text answer is held to (`output_config.format`); None: the answer is free text.
    answer_schema: dict | None = None
    # How many passages the free text may cite (`engine.citations`); 0: it cites nothing.
    citations: int = 0


def structural_tag_for(tools: list[ToolSpec], choice: ToolChoice, fmt: ToolCallFormat,
                       answer_schema: dict | None = None, after_thinking: bool = False,
                       citations: int = 0) -> StructuralTag:
    """The structural tag for `choice` over `tools` in `fmt`'s syntax, the text answer held to `answer_schema`
    when there is one. `after_thinking`: the answer follows a thinking section, so the line break a model writes
    after `</think>` may come before the JSON (the output parser drops it). `citations`: the free text may cite
    that many passages."""
    if answer_schema is not None and choice.mode in ("auto", "none"):
        answer = GrammarFormat(grammar=arguments_grammar(answer_schema))
        if after_thinking:
            answer = SequenceFormat(elements=[RegexFormat(pattern=LEADING_WHITESPACE), answer])
        if not tools or choice.mode == "none":
            return StructuralTag(format=answer)
        if fmt.trigger_opens_json:
            # Its calls are bare JSON objects: a JSON answer and a call could not be told apart while streaming.
            raise ToolGrammarError(f"an answer format together with tools under tool_choice 'auto' is not "
                                   f"supported for the {fmt.name} tool-call format (its calls are plain JSON); "
                                   f"use tool_choice 'none' or 'any', or leave out the format")
        calls = structural_tag_for(tools, ToolChoice("any", disable_parallel=choice.disable_parallel), fmt).format
        return StructuralTag(format=OrFormat(elements=[answer, calls]))
    if citations and (not tools or choice.mode in ("auto", "none")):
        if not tools:
            return StructuralTag(format=citing_text(citations))
        if choice.mode == "none":
            return StructuralTag(format=citing_text(citations, excludes=(fmt.trigger,)))
        return StructuralTag(format=citing_text_then_calls(citations, fmt.trigger, _calls_block(
            tools, fmt, one_call=choice.disable_parallel)))
    if choice.mode == "none":
        return StructuralTag(format=AnyTextFormat(excludes=[fmt.trigger]))
    if choice.mode == "tool":
        tools = [tool for tool in tools if tool.name == choice.name]
        if not tools:
            raise ToolGrammarError(f"tool_choice names {choice.name!r}, which is not among the tools")
    if not tools:
        raise ToolGrammarError("a tool grammar needs at least one tool")
    one_call = choice.mode == "tool" or choice.disable_parallel
    calls = [_call_tag(tool, fmt) for tool in tools]

    def call_list(at_least_one: bool, only_one: bool):
        return TagsWithSeparatorFormat(tags=calls, separator=fmt.call_separator, at_least_one=at_least_one,
                                       stop_after_first=only_one)

    if choice.mode == "auto":
        if fmt.section_prefix:
            # One section per turn, opened by the trigger, holding the calls.
            section = TagFormat(begin=fmt.section_prefix, content=call_list(True, one_call), end=fmt.section_suffix)
            body = TriggeredTagsFormat(triggers=[fmt.trigger], tags=[section], stop_after_first=True)
        else:
            body = TriggeredTagsFormat(triggers=[fmt.trigger], tags=calls, stop_after_first=one_call)
        return StructuralTag(format=body)
    return StructuralTag(format=SequenceFormat(elements=[RegexFormat(pattern=LEADING_WHITESPACE),
                                                         _calls_block(tools, fmt, one_call)]))


def _calls_block(tools: list[ToolSpec], fmt: ToolCallFormat, one_call: bool):
    """One or more calls (exactly one with `one_call`), in their section where the family has one."""
    body = TagsWithSeparatorFormat(tags=[_call_tag(tool, fmt) for tool in tools], separator=fmt.call_separator,
                                   at_least_one=True, stop_after_first=one_call)
    if fmt.section_prefix:
        body = TagFormat(begin=fmt.section_prefix, content=body, end=fmt.section_suffix)
    return body


def recovery_tag_for(tools: list[ToolSpec], fmt: ToolCallFormat) -> StructuralTag:
    """A drifted call's rest, from just after its "name" key: the separator, one call of a listed tool in the
    family's native syntax from the name on (so the native parser reads it), the section's end, then end-of-turn."""
    elements = [RegexFormat(pattern=NAME_SEPARATOR),
                TagsWithSeparatorFormat(tags=[_call_tag(tool, fmt, opening="") for tool in tools],
                                        separator=fmt.call_separator, at_least_one=True, stop_after_first=True)]
    if fmt.section_suffix:
        elements.append(ConstStringFormat(value=fmt.section_suffix))
    return StructuralTag(format=SequenceFormat(elements=elements))


def _call_tag(tool: ToolSpec, fmt: ToolCallFormat, opening: str | None = None) -> TagFormat:
    name = json.dumps(tool.name, ensure_ascii=False)[1:-1]
    return TagFormat(begin=(fmt.call_prefix if opening is None else opening) + name + fmt.arguments_prefix,
                     content=GrammarFormat(grammar=arguments_grammar(tool.input_schema)), end=fmt.call_suffix)


def arguments_grammar(schema: dict) -> str:
    """EBNF for one tool's arguments: its input_schema, in the compact layout."""
    grammar = xgr.Grammar.from_json_schema(grammar_schema(schema), any_whitespace=False, separators=JSON_SEPARATORS,
                                           strict_mode=True)
    return str(grammar).replace(_LENGTH_LIMITED_STRING_CHAR, _JSON_STRING_CHAR)


def schema_findings(tools: list[ToolSpec]) -> tuple[str, ...]:
    """Every schema keyword the grammar will not enforce exactly, across `tools`, prefixed with the tool name."""
    return tuple(f"{tool.name}: {finding}" for tool in tools
                 for finding in unsupported_schema_keywords(tool.input_schema))


class ToolGrammarCompiler:
    """xgrammar's tokenizer info and compiler for one tokenizer and vocab size, with an LRU of tool grammars."""

    def __init__(self, tokenizer, vocab_size: int | None = None, cache_size: int = COMPILED_CACHE_SIZE):
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        self.vocab_size = info.vocab_size
        # A weak reference: compilers are kept per tokenizer in a WeakKeyDictionary, which a strong one would pin.
        tokenizer_ref = weakref.ref(tokenizer)

        @functools.lru_cache(maxsize=4096)
        def first_token(text: str) -> int | None:
            tokenizer = tokenizer_ref()
            ids = tokenizer.encode(text, add_special_tokens=False) if tokenizer is not None else []
            return ids[0] if ids else None

        self.first_token = first_token
        self._compiler = xgr.GrammarCompiler(info)
        self._cache: OrderedDict[tuple, ToolGrammar] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def compile(self, tools, choice: ToolChoice, fmt: ToolCallFormat, answer_schema: dict | None = None,
                after_thinking: bool = False, citations: int = 0) -> ToolGrammar:
        specs = tool_specs(tools)
        if specs and choice.mode in ("any", "tool"):
            answer_schema = None           # the answer is calls only: there is no text for a format to shape
            citations = 0                  # ... or to cite in
        if answer_schema is not None:
            answer_schema = grammar_schema(answer_schema)
            citations = 0                  # a JSON answer has no free text to cite in
        else:
            after_thinking = False         # the free-text grammars do not depend on it
        key = _cache_key(specs, choice, fmt) + (json.dumps(answer_schema, sort_keys=True, ensure_ascii=False),
                                                after_thinking, citations)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return dataclasses.replace(cached, choice=choice, cache_hit=True, compile_seconds=0.0)
        started = time.perf_counter()
        try:
            tag = structural_tag_for(specs, choice, fmt, answer_schema, after_thinking, citations)
            compiled = self._compiler.compile_structural_tag(tag)
            # A drift can only start in free text; with an answer format there is none.
            recovery = self._compiler.compile_structural_tag(recovery_tag_for(specs, fmt)) \
                if choice.mode == "auto" and specs and answer_schema is None else None
        except (RuntimeError, ValueError, xgr.InvalidStructuralTagError) as error:
            what = "the tool schemas" if answer_schema is None else "the answer format's schema or the tool schemas"
            raise ToolGrammarError(f"{what} could not be compiled into a grammar: {error}") from error
        grammar = ToolGrammar(compiled, self.vocab_size, choice, fmt,
                              schema_findings(specs) if choice.mode != "none" else (),
                              cache_hit=False, compile_seconds=time.perf_counter() - started,
                              first_token=self.first_token, recovery=recovery, answer_schema=answer_schema,
                              citations=citations)
        with self._lock:
            self._cache[key] = grammar
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return grammar


def _cache_key(specs: list[ToolSpec], choice: ToolChoice, fmt: ToolCallFormat) -> tuple:
    # Descriptions do not shape the grammar, and `none` does not depend on the tools at all.
    tools = "" if choice.mode == "none" else json.dumps(
        [[spec.name, spec.input_schema] for spec in specs], sort_keys=True, ensure_ascii=False)
    return fmt, tools, choice.mode, choice.name, choice.disable_parallel


_compilers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_compilers_lock = threading.Lock()


def compiler_for(tokenizer, vocab_size: int | None = None) -> ToolGrammarCompiler:
    """The shared compiler for this tokenizer and model vocab size (built on first use, ~0.15 s for 49k tokens)."""
    with _compilers_lock:
        per_vocab = _compilers.setdefault(tokenizer, {})
        compiler = per_vocab.get(vocab_size)
        if compiler is None:
            compiler = per_vocab[vocab_size] = ToolGrammarCompiler(tokenizer, vocab_size)
        return compiler


def compile_tool_grammar(tokenizer, tools, choice: ToolChoice, fmt: ToolCallFormat, *,
                         vocab_size: int | None = None, answer_schema: dict | None = None,
                         after_thinking: bool = False, citations: int = 0) -> ToolGrammar | None:
    """The grammar for this request's tools, tool_choice, answer format and citable passages, or None when there
    is nothing to constrain (no tools, no format, no citations: the model cannot call anything it was not shown,
    and the api layer rejects tool_choice without tools). `vocab_size` is the model's logits width
    (`model_vocab_size(model)`), which may differ from the tokenizer's length. Raises ToolGrammarError."""
    if not tools and answer_schema is None and not citations:
        return None
    return compiler_for(tokenizer, vocab_size).compile(tools, choice, fmt, answer_schema, after_thinking, citations)


def model_vocab_size(model) -> int:
    """Columns of the model's logits: its output embedding rows (config.vocab_size can disagree after resizing)."""
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if isinstance(getattr(output, "out_features", None), int):    # a Linear, or a quantized one (packed weight)
        return output.out_features
    if output is not None and isinstance(getattr(output, "weight", None), torch.Tensor):
        return int(output.weight.shape[0])
    return int(model.config.vocab_size)


def make_tool_logits_processor(grammar: ToolGrammar, end_of_turn_ids: Collection[int], *,
                               start_after: Callable[[torch.LongTensor], bool] | None = None,
                               active: bool = True, jump_forward: bool = True) -> ToolGrammarProcessor:
    """A fresh per-request LogitsProcessor enforcing `grammar`.

    end_of_turn_ids: the tokens that end the turn; the only ones allowed once the calls are complete.
    active=False: it does nothing until `processor.activate()`.
    start_after: a predicate over the tokens generated so far (1-D tensor, prompt excluded), checked each step
        while inactive; in the step it first holds, the grammar chooses that step's token (a row with thinking
        passes `RequestThinking.answer_started`: the first token after `</think>`).
    Tokens generated before activation are never shown to the grammar.
    jump_forward: force the tokenizer's own tokens where the grammar allows one continuation only (see
        tool_processor); False leaves every choice among the allowed tokens to the model.
    """
    return ToolGrammarProcessor(grammar.compiled, grammar.vocab_size, end_of_turn_ids,
                                start_after=start_after, active=active and start_after is None,
                                first_token=grammar.first_token if jump_forward else None)
