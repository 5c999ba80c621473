"""The tool-call parser: the same events however the output is split, valid JSON prefixes at every piece,
nothing of a call opener leaking into text, malformed calls passed on as text."""
from __future__ import annotations

import json
import random
import re

import pytest
from tool_fixtures import HERMES_TWO_CALLS, check_argument_streams, merged, parse_pieces, random_chunks, text_of

from app.engine.events import BlockEnd, TextDelta, ToolArgsDelta, ToolCallStart
from app.engine.tools.formats import GENERIC, HERMES, LLAMA3, MISTRAL, render_tool_calls
from app.engine.tools.parser import ToolCallParser, new_tool_call_id

EXPECTED_TWO_CALLS = [
    TextDelta("Let me check both."), BlockEnd(),
    ToolCallStart("" + "0" * 24, "get_weather"),
    ToolArgsDelta('{"city": "Paris \\"Centre\\"", "unit": "celsius"}'), BlockEnd(),
    ToolCallStart("" + "0" * 23 + "1", "create_ticket"),
    ToolArgsDelta('{"title": "Printer", "priority": "high", "count": 2, "owner": {"name": "Sam", "team": "red"}, '
                  '"labels": ["bug", "printer"], "ratio": -1.5e-3, "ok": true, "none": null, "empty": {}, '
                  '"list": []}'),
    BlockEnd(),
    TextDelta("Done, both are on their way."),
]


def test_two_calls_with_text_around_them_in_one_piece():
    events, parser = parse_pieces(HERMES, [HERMES_TWO_CALLS])
    assert merged(events) == EXPECTED_TWO_CALLS
    assert parser.made_call
    assert [(c.name, c.complete) for c in parser.calls] == [("get_weather", True), ("create_ticket", True)]
    assert parser.calls[0].input == {"city": 'Paris "Centre"', "unit": "celsius"}


@pytest.mark.parametrize("fmt", [HERMES, GENERIC])
def test_character_by_character_gives_the_same_events(fmt):
    events, _ = parse_pieces(fmt, list(HERMES_TWO_CALLS))
    assert merged(events) == EXPECTED_TWO_CALLS
    assert len([e for e in events if isinstance(e, ToolArgsDelta)]) > 20      # it really streamed
    assert check_argument_streams(events)[1]["owner"] == {"name": "Sam", "team": "red"}
    for event in events:                        # no piece of a tag ever reaches the text
        if isinstance(event, TextDelta):
            assert "<" not in event.text and ">" not in event.text, event


def test_every_random_chunking_gives_the_same_events():
    rng = random.Random(1234)
    for _ in range(200):
        events, _ = parse_pieces(HERMES, random_chunks(HERMES_TWO_CALLS, rng))
        assert merged(events) == EXPECTED_TWO_CALLS
        check_argument_streams(events)


def test_every_two_way_split_gives_the_same_events():
    text = 'Hi <tool_call>\n{"name": "f", "arguments": {"a": [1, {"b": "x"}]}}\n</tool_call>'
    for cut in range(len(text) + 1):
        events, _ = parse_pieces(HERMES, [text[:cut], text[cut:]])
        assert merged(events) == [TextDelta("Hi"), BlockEnd(), ToolCallStart("" + "0" * 24, "f"),
                                  ToolArgsDelta('{"a": [1, {"b": "x"}]}'), BlockEnd()], cut


def closing_for(prefix: str) -> str:
    """What closes a JSON prefix's open string and brackets (an independent, minimal tracker)."""
    stack, in_string, escaped = [], False, False
    for char in prefix:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append("]" if char == "[" else "}")
        elif char in "]}":
            stack.pop()
    return ('"' if in_string else "") + "".join(reversed(stack))


def test_argument_pieces_only_end_where_the_json_can_be_closed():
    events, _ = parse_pieces(HERMES, list('<tool_call>\n{"name": "f", "arguments": {"n": -12.5e+3, "t": true, '
                                          '"s": "a\\u00e9\\n\\"", "k": [null, false, 0]}}\n</tool_call>'))
    sent = ""
    for event in events:
        if isinstance(event, ToolArgsDelta):
            sent += event.partial_json
            json.loads(sent + closing_for(sent))      # raises if the stream stopped at an unclosable point
    assert json.loads(sent) == {"n": -12.5e3, "t": True, "s": "a\u00e9\n\"", "k": [None, False, 0]}


def test_whitespace_between_and_around_calls_is_no_text_block():
    call = '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>'
    events, _ = parse_pieces(HERMES, list("\n\n" + call + "\n\n  " + call + "\n"))
    assert merged(events) == [ToolCallStart("" + "0" * 24, "f"), ToolArgsDelta("{}"), BlockEnd(),
                              ToolCallStart("" + "0" * 23 + "1", "f"), ToolArgsDelta("{}"), BlockEnd()]


def test_text_keeps_its_own_whitespace():
    events, parser = parse_pieces(HERMES, list("  Two\n\nlines\n"))
    assert text_of(events) == "  Two\n\nlines\n"
    assert not parser.made_call and parser.calls == []


def test_a_partial_opener_is_held_then_released_as_text():
    parser = ToolCallParser(HERMES)
    assert parser.feed("a <tool_ca") == [TextDelta("a")]
    assert parser.feed("ll") == []
    assert parser.feed("!") == [TextDelta(" <tool_call!")]
    assert parser.feed("x <tool") == [TextDelta("x")]
    assert parser.flush() == [TextDelta(" <tool")]


def test_mistral_calls_share_one_list():
    text = render_tool_calls(MISTRAL, [("a", {"x": 1}), ("b", {"y": [2]})])
    assert text == '[TOOL_CALLS][{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {"y": [2]}}]'
    for pieces in ([text], list(text)):
        events, parser = parse_pieces(MISTRAL, pieces)
        assert merged(events) == [ToolCallStart("" + "0" * 24, "a"), ToolArgsDelta('{"x": 1}'), BlockEnd(),
                                  ToolCallStart("" + "0" * 23 + "1", "b"), ToolArgsDelta('{"y": [2]}'),
                                  BlockEnd()]
        assert [c.input for c in parser.calls] == [{"x": 1}, {"y": [2]}]


def test_mistral_stringified_arguments_are_decoded():
    events, parser = parse_pieces(MISTRAL, ['[TOOL_CALLS][{"name": "a", "arguments": "{\\"x\\": 1}"}]'])
    assert parser.calls[0].input == {"x": 1}
    assert check_argument_streams(events) == [{"x": 1}]


def test_llama3_json_call_after_text():
    events, _ = parse_pieces(LLAMA3, list('Sure. {"name": "f", "parameters": {"q": "x"}}'),
                                  tool_names=["f"])
    assert merged(events) == [TextDelta("Sure."), BlockEnd(), ToolCallStart("" + "0" * 24, "f"),
                              ToolArgsDelta('{"q": "x"}'), BlockEnd()]


def test_llama3_json_that_names_no_tool_is_text():
    text = 'It is {"name": "Bob", "age": 3} here.'
    events, parser = parse_pieces(LLAMA3, list(text), tool_names=["f"])
    assert text_of(events) == text and not parser.made_call


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("broken", [
    '<tool_call>\n{"name": nope, "arguments": {}}\n</tool_call>',           # invalid JSON
    '<tool_call>\n{"name": "g", "arguments": {}}\n</tool_call>',            # not one of the tools
    '<tool_call>\n{"arguments": {"a": 1}}\n</tool_call>',                   # no name
    '<tool_call>\nnot json at all\n</tool_call>',
])
def test_a_call_malformed_before_its_name_is_out_is_passed_on_as_text(stream, broken):
    text = "Before. " + broken + " After."
    events, parser = parse_pieces(GENERIC, list(text), stream_arguments=stream, tool_names=["f"])
    assert not parser.made_call
    assert not any(isinstance(e, ToolCallStart | ToolArgsDelta | BlockEnd) for e in events)
    assert text_of(events) == text


def test_without_streaming_a_call_with_broken_arguments_is_text_even_after_its_name():
    text = '<tool_call>\n{"name": "f", "arguments": {"a": 1, }}\n</tool_call>'
    events, parser = parse_pieces(GENERIC, list(text), stream_arguments=False)
    assert text_of(events) == text and parser.calls == []


def test_without_streaming_a_valid_call_comes_whole():
    events, _ = parse_pieces(GENERIC, list(HERMES_TWO_CALLS), stream_arguments=False)
    assert merged(events) == EXPECTED_TWO_CALLS
    assert len([e for e in events if isinstance(e, ToolArgsDelta)]) == 2


def test_a_call_cut_off_by_the_token_limit_is_closed_into_an_object():
    cuts = {'{"q": "hal': {"q": "hal"}, '{"q": "half", "n": 1': {"q": "half", "n": 1},
            '{"q": "half", "n": [1, {"z": tr': {"q": "half", "n": [1, {}]}, '{"q": "a\\u00': {"q": "a"},
            '{"q": "half",': {"q": "half"}, '{': {}, '{"q': {}, '': {}}
    for cut, expected in cuts.items():
        events, parser = parse_pieces(HERMES, list('<tool_call>\n{"name": "f", "arguments": ' + cut))
        assert check_argument_streams(events) == [expected], cut
        assert parser.calls[0].input == expected and parser.calls[0].complete is False


def test_a_call_cut_off_before_its_name_is_dropped_when_streaming_and_text_otherwise():
    events, parser = parse_pieces(HERMES, ['Hm <tool_call>\n{"na'])
    assert events == [TextDelta("Hm")] and not parser.made_call
    events, parser = parse_pieces(HERMES, ['Hm <tool_call>\n{"na'], stream_arguments=False)
    assert text_of(events) == 'Hm <tool_call>\n{"na' and not parser.made_call


def test_a_call_that_breaks_after_streaming_began_is_closed_and_the_rest_is_text():
    events, parser = parse_pieces(HERMES, list('<tool_call>\n{"name": "f", "arguments": {"a": 1, "b": x} oops'))
    assert check_argument_streams(events) == [{"a": 1}]
    assert parser.calls[0].complete is False
    assert text_of(events) == "x} oops"


def test_raw_control_characters_in_strings_are_escaped_in_the_stream():
    events, _ = parse_pieces(HERMES, list('<tool_call>\n{"name": "f", "arguments": {"a": "x\ty"}}\n</tool_call>'))
    assert check_argument_streams(events) == [{"a": "x\ty"}]
    assert merged(events)[1] == ToolArgsDelta('{"a": "x\\ty"}')


def test_call_ids_look_like_anthropic_ones():
    ids = {new_tool_call_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9]{24}", i) for i in ids)
