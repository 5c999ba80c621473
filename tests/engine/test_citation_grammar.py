"""Citing text under the grammar, on the real SmolLM2 tokenizer without a model: a mark can only name a passage
that exists, alone or beside tool calls; and the mark parser that turns marks into CitationMark events."""
from __future__ import annotations

import re

import pytest
import xgrammar as xgr
from tool_fixtures import TOOLS

from engine_helpers import chat, final, text_of

from app.engine.citations.markers import CitationMarkParser
from app.engine.errors import ToolGrammarError
from app.engine.events import BlockEnd, CitationMark, TextDelta, ThinkingDelta, ToolCallStart
from app.engine.request import Sampling, ThinkingSettings
from app.engine.text.output_pipeline import OutputPipeline
from app.engine.text.stop_sequences import StopSequenceMatcher
from app.engine.thinking.parser import OutputParser
from app.engine.tools.answer_format import AnswerTextParser
from app.engine.tools.formats import FORMATS, GENERIC, render_tool_calls
from app.engine.tools.grammar import ToolChoice, compile_tool_grammar

END = 2                                    # SmolLM2's <|im_end|>
PARIS = ("get_weather", {"city": "Paris", "unit": "celsius"})


def citing(tokenizer, passages, mode="auto", fmt=GENERIC, tools=(), **options):
    return compile_tool_grammar(tokenizer, list(tools), ToolChoice(mode), fmt, citations=passages, **options)


def accepts(grammar, text: str) -> bool:
    matcher = xgr.GrammarMatcher(grammar.compiled, override_stop_tokens=[END])
    return matcher.accept_string(text) and matcher.accept_token(END)


@pytest.mark.parametrize("text, valid", [
    ("The sky is blue [2]. Grass is green [1][12].", True),
    ("No marks at all, [a link](x), a list [ 1 ] and a lone [", True),
    ("Out of range [13].", False),
    ("Zero [0].", False),
    ("Dotted [1.2].", False),
    ("Unclosed [1", False),
    ("Leading zero [01].", False),
    ("Too long [120].", False),
])
def test_only_marks_of_existing_passages_get_through(smollm_tokenizer, text, valid):
    assert accepts(citing(smollm_tokenizer, 12), text) is valid


def test_a_large_passage_count_compiles_fast_and_holds(smollm_tokenizer):
    grammar = citing(smollm_tokenizer, 1500)
    assert grammar.compile_seconds < 2
    assert accepts(grammar, "x [1500] y [999] z") and not accepts(grammar, "x [1501]")
    assert not accepts(grammar, "x [2000]")


def test_without_citations_nothing_changes(smollm_tokenizer):
    assert compile_tool_grammar(smollm_tokenizer, [], ToolChoice(), GENERIC) is None
    free = citing(smollm_tokenizer, 0, tools=TOOLS)
    assert free.citations == 0 and accepts(free, "Anything [99] goes here.")


@pytest.mark.parametrize("fmt", list(FORMATS.values()), ids=list(FORMATS))
def test_with_tools_under_auto_the_text_cites_and_calls_may_follow(smollm_tokenizer, fmt):
    grammar = citing(smollm_tokenizer, 3, "auto", fmt, TOOLS)
    calls = render_tool_calls(fmt, [PARIS])
    assert accepts(grammar, "Paris is sunny [3].")
    assert accepts(grammar, "Let me check [1]. " + calls)
    assert not accepts(grammar, "Let me check [4]. " + calls)
    # Inside a call's arguments, brackets and digits are JSON, not marks.
    assert accepts(grammar, render_tool_calls(fmt, [("get_weather", {"city": "Rue [9]", "unit": "celsius"})]))


def test_none_cites_and_cannot_call_any_tools_only_call(smollm_tokenizer):
    none = citing(smollm_tokenizer, 2, "none", GENERIC, TOOLS)
    assert accepts(none, "Sunny [2].") and not accepts(none, "Sunny [3].")
    assert not accepts(none, render_tool_calls(GENERIC, [PARIS]))
    forced = citing(smollm_tokenizer, 2, "any", GENERIC, TOOLS)
    assert forced.citations == 0 and not accepts(forced, "Sunny [2].")


def test_an_answer_format_leaves_no_text_to_cite_in(smollm_tokenizer):
    grammar = citing(smollm_tokenizer, 2, answer_schema={"type": "object"})
    assert grammar.citations == 0 and accepts(grammar, "{}")


def parse(pieces, passages=5):
    parser = CitationMarkParser(AnswerTextParser(), passages)
    events = [event for piece in pieces for event in parser.feed(piece)] + parser.flush()
    merged = []                      # adjacent text pieces joined, so the split is what is compared
    for event in events:
        if isinstance(event, TextDelta) and merged and isinstance(merged[-1], TextDelta):
            merged[-1] = TextDelta(merged[-1].text + event.text)
        else:
            merged.append(event)
    return merged, parser.marks


@pytest.mark.parametrize("pieces", [["The sky is blue [2]. Grass [1][3] grows."],
                                    ["The sky is blue", " ", "[", "2", "]", ". Grass ", "[1", "] [", "3] grows."]],
                         ids=["whole", "split"])
def test_marks_become_events_after_the_text_they_follow(pieces):
    events, marks = parse(pieces)
    assert events == [TextDelta("The sky is blue"), CitationMark(2), TextDelta(". Grass"), CitationMark(1),
                      CitationMark(3), TextDelta(" grows.")]
    assert marks == 3


def test_text_that_only_looks_like_a_mark_stays_text():
    assert parse(["See [a] and [ 1 ] and [9] and x[0]."])[0] == [TextDelta("See [a] and [ 1 ] and [9] and x[0].")]
    assert parse(["Ends with a bracket ["])[0] == [TextDelta("Ends with a bracket [")]


def test_an_unfinished_mark_at_the_end_is_dropped_and_trailing_space_kept():
    assert parse(["Cut off [1"])[0] == [TextDelta("Cut off ")]
    assert parse(["Trailing  "])[0] == [TextDelta("Trailing  ")]


def test_calls_pass_through_and_release_the_held_text(smollm_tokenizer):
    class Calls:                               # a calls parser's shape: it found a call after some text
        calls, made_call = ("call",), True

        def feed(self, text):
            return [TextDelta(text), BlockEnd(), ToolCallStart("1", "get_weather")]

        def flush(self):
            return []

    parser = CitationMarkParser(Calls(), 3)
    assert parser.feed("Checking [1") == [TextDelta("Checking"), TextDelta(" [1"), BlockEnd(),
                                          ToolCallStart("1", "get_weather")]
    assert parser.made_call and parser.calls == ("call",)


# -- the row: grammar and mark parser wired from the request ----------------------------------------------------

PASSAGES = ({"passage": 1}, {"passage": 2}, {"passage": 3})      # opaque to the engine: only their count matters


@pytest.mark.parametrize("options", [{}, {"thinking": ThinkingSettings(budget_tokens=12)},
                                     {"tools": tuple(TOOLS), "tool_choice": ToolChoice("auto")}],
                         ids=["plain", "thinking", "tools"])
def test_the_random_model_answers_under_the_citing_grammar(engine, options):
    events = list(engine.submit(chat(citations=PASSAGES, max_new_tokens=24, sampling=Sampling(temperature=1.0, seed=3),
                                     **options)).events())
    stats = final(events).stats
    assert stats["citations"]["passages"] == 3
    assert stats["citations"]["marks"] == sum(isinstance(event, CitationMark) for event in events)
    assert all(1 <= event.passage <= 3 for event in events if isinstance(event, CitationMark))
    assert not re.search(r"\[[0-9]", text_of(events))


def test_marks_in_the_output_pipeline_after_thinking_and_before_a_stop_sequence():
    """The row's pipeline: thinking is never parsed for marks; the answer's marks become events in order, and a
    stop sequence is matched on the text the client sees (marks out; it does not span one)."""
    emitted = []
    pipeline = OutputPipeline(OutputParser("<think>", "</think>", starts_in_thinking=True),
                              StopSequenceMatcher(("Grass a",)), emitted.append,
                              CitationMarkParser(AnswerTextParser(), 3))
    for piece in ["Passage [2] says", "</think>", "Blue sky [2]. Gre", "en [1][3]", ". Grass", " again [1]."]:
        pipeline.feed(piece)
    pipeline.finish()
    assert emitted == [ThinkingDelta("Passage [2] says"), BlockEnd(), TextDelta("Blue sky"), CitationMark(2),
                       TextDelta(". Gre"), TextDelta("en"), CitationMark(1), CitationMark(3), TextDelta(". ")]
    assert pipeline.stop_sequence == "Grass a"


def test_without_citations_the_request_has_no_grammar(engine):
    assert engine._plan(chat()).answer is None
    assert engine._plan(chat(citations=PASSAGES)).answer.citations == 3


def test_a_prefill_that_ends_inside_a_mark_is_refused(engine):
    with pytest.raises(ToolGrammarError, match="inside a citation mark"):
        engine.submit(chat(citations=PASSAGES, prefill="The sky is blue [2"))
    engine.submit(chat(citations=PASSAGES, prefill="The sky is blue [2]."))
