"""The output parser: thinking markers recognised across pieces, never leaking into deltas."""
from __future__ import annotations

import pytest

from app.engine.events import BlockEnd, TextDelta, ThinkingDelta
from app.engine.text.output_pipeline import OutputPipeline
from app.engine.thinking.parser import OutputParser
from app.engine.text.stop_sequences import StopSequenceMatcher


def parse(parser: OutputParser, pieces: list[str]) -> list:
    events = []
    for piece in pieces:
        events += parser.feed(piece)
    return events + parser.flush()


def merged(events: list) -> list:
    """Adjacent deltas of one kind joined, so assertions do not depend on how the text was split."""
    out = []
    for event in events:
        if out and type(event) is type(out[-1]) and isinstance(event, TextDelta | ThinkingDelta):
            out[-1] = type(event)(out[-1].text + event.text)
        else:
            out.append(event)
    return out


def test_plain_text_passes_through_unchanged():
    assert parse(OutputParser(), ["Hello", " <think> ", "world\n"]) == [
        TextDelta("Hello"), TextDelta(" <think> "), TextDelta("world\n")]


def test_thinking_then_text_whatever_the_split():
    text = "<think>\nLet me see.\n</think>\n\nIt is 4."
    # Every way of cutting the output into three pieces, markers split anywhere.
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            pieces = [text[:i], text[i:j], text[j:]]
            events = parse(OutputParser("<think>", "</think>"), pieces)
            assert merged(events) == [ThinkingDelta("Let me see.\n"), BlockEnd(), TextDelta("It is 4.")], pieces
            for event in events:          # no piece of a marker ever leaks into a delta
                if isinstance(event, TextDelta | ThinkingDelta):
                    assert "<" not in event.text and ">" not in event.text, pieces


def test_starts_inside_thinking_when_the_prompt_opened_it():
    events = parse(OutputParser("<think>", "</think>", starts_in_thinking=True), ["\nHmm", "</thi", "nk>Yes"])
    assert merged(events) == [ThinkingDelta("Hmm"), BlockEnd(), TextDelta("Yes")]


def test_text_before_thinking_is_closed_first():
    events = parse(OutputParser("<think>", "</think>"), ["Sure. <th", "ink>why</think>ok"])
    assert merged(events) == [TextDelta("Sure. "), BlockEnd(), ThinkingDelta("why"), BlockEnd(), TextDelta("ok")]


def test_a_held_partial_marker_that_never_completes_is_content():
    parser = OutputParser("<think>", "</think>", starts_in_thinking=True)
    assert parser.feed("a </thi") == [ThinkingDelta("a ")]
    assert parser.feed("s is not it") == [ThinkingDelta("</this is not it")]
    assert parser.feed("end </th") == [ThinkingDelta("end ")]
    assert parser.flush() == [ThinkingDelta("</th")]


def test_empty_thinking_opens_no_block():
    assert merged(parse(OutputParser("<think>", "</think>"), ["<think></think>Hi"])) == [TextDelta("Hi")]


def test_a_single_thinking_section_makes_a_later_open_marker_answer_text():
    parser = OutputParser("<think>", "</think>", starts_in_thinking=True, single_thinking_section=True)
    events = parse(parser, ["plan</think>\n\nSay <thi", "nk>hi</think>"])
    assert merged(events) == [ThinkingDelta("plan"), BlockEnd(), TextDelta("Say <think>hi</think>")]


def test_markers_must_come_in_pairs():
    with pytest.raises(ValueError):
        OutputParser("<think>", None)
    with pytest.raises(ValueError):
        OutputParser(starts_in_thinking=True)


def run_pipeline(parser, stops, pieces):
    events = []
    pipeline = OutputPipeline(parser, StopSequenceMatcher(stops), events.append)
    for piece in pieces:
        pipeline.feed(piece)
    pipeline.finish()
    return merged(events), pipeline.stop_sequence


def test_stop_sequences_apply_to_text_not_to_thinking():
    parser = OutputParser("<think>", "</think>", starts_in_thinking=True)
    events, stop = run_pipeline(parser, ["##"], ["plan ## more", "</think>", "ans", "wer #", "# hidden"])
    assert events == [ThinkingDelta("plan ## more"), BlockEnd(), TextDelta("answer ")]
    assert stop == "##"


def test_text_held_for_a_stop_sequence_is_released_before_the_section_ends():
    parser = OutputParser("<think>", "</think>")
    events, stop = run_pipeline(parser, ["STOP"], ["Hi ST", "<think>x</think>"])
    assert events == [TextDelta("Hi ST"), BlockEnd(), ThinkingDelta("x"), BlockEnd()]
    assert stop is None
