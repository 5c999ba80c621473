"""The incremental JSON reader under the argument stream: strict syntax, value boundaries, closable points."""
from __future__ import annotations

import json

import pytest

from app.engine.tools.partial_json import JsonReader, JsonSyntaxError


def read(text: str) -> tuple[JsonReader, list[tuple]]:
    reader, boundaries = JsonReader(), []
    for position, char in enumerate(text):
        boundaries += [(position, *b) for b in reader.push(char)]
    return reader, boundaries


@pytest.mark.parametrize("text", ['{"a": [1, -0.5e+3, "x\\u00e9\\"", true, false, null, {}, []]}', " [ ] ", '"s"',
                                  '{"k\\"ey": {"n": {"m": [[0]]}}}'])
def test_valid_json_is_read_to_the_end_and_closable_prefixes_close(text):
    reader = JsonReader()
    for position, char in enumerate(text):
        reader.push(char)
        if reader.closable:
            json.loads(text[:position + 1] + reader.closers())
    assert reader.complete


@pytest.mark.parametrize("text", ['{"a": 01}', '{"a": tru}', "{a: 1}", '{"a": 1,}', "[1 2]", '{"a": 1.}', '{"a": -}',
                                  '{"a": "\\x"}', '{"a": "\\u12g4"}', '[1]]', '{"a": 1]', '{} x', '{"a" 1}'])
def test_invalid_json_is_refused_at_the_first_bad_character(text):
    with pytest.raises(JsonSyntaxError):
        read(text)


def test_boundaries_name_depth_and_key():
    _, boundaries = read('{"name": "f", "arguments": {"x": 12}}')
    assert boundaries == [(0, "start", 0, None), (9, "start", 1, "name"), (11, "end", 1, "name", True),
                          (27, "start", 1, "arguments"), (33, "start", 2, "x"), (35, "end", 2, "x", False),
                          (35, "end", 1, "arguments", True), (36, "end", 0, None, True)]


def test_unclosable_points_are_reported():
    for prefix in ('{"a', '{"a"', '{"a":', '{"a": 1,', '{"a": -', '{"a": 1.', '{"a": 1e', '{"a": t', '{"a": "\\',
                   '{"a": "\\u00'):
        assert not read(prefix)[0].closable, prefix
    reader, _ = read('{"a": [1, {"b": "x')
    assert reader.closable and reader.closers() == '"}]}' and reader.closers(2) == '"}'


def test_raw_control_characters_in_strings_are_listed():
    reader, _ = read('{"a\\tb": "x\ty\x01"}')
    assert reader.complete and reader.raw_controls == [11, 13]
