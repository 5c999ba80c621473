"""Tools, call texts and checks shared by the tool tests."""
from __future__ import annotations

import json
import random

import jiter

from app.engine.events import BlockEnd, TextDelta, ToolArgsDelta, ToolCallStart
from app.engine.tools.parser import ToolCallParser

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 24},
                       "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
}

# Every constraint the brief lists, with strings kept short so a call fits in few tokens.
TICKET = {
    "name": "create_ticket",
    "description": "Open a support ticket.",
    "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "title": {"type": "string", "pattern": "^[A-Z][a-z]{2,9}$"},
            "priority": {"type": "string", "enum": ["low", "medium", "high"]},
            "count": {"type": "integer", "minimum": 1, "maximum": 5},
            "owner": {
                "type": "object",
                "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 10},
                               "team": {"type": "string", "enum": ["red", "blue"]}},
                "required": ["name", "team"],
                "additionalProperties": False,
            },
            "labels": {"type": "array", "items": {"type": "string", "enum": ["bug", "printer", "urgent"]},
                       "maxItems": 2},
        },
        "required": ["title", "priority", "count", "owner"],
        "additionalProperties": False,
    },
}

TOOLS = [WEATHER, TICKET]
SCHEMAS = {tool["name"]: tool["input_schema"] for tool in TOOLS}

HERMES_TWO_CALLS = (
    'Let me check both.\n'
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris \\"Centre\\"", "unit": "celsius"}}\n'
    '</tool_call>\n'
    '<tool_call>\n{"name": "create_ticket", "arguments": {"title": "Printer", "priority": "high", "count": 2, '
    '"owner": {"name": "Sam", "team": "red"}, "labels": ["bug", "printer"], "ratio": -1.5e-3, "ok": true, '
    '"none": null, "empty": {}, "list": []}}\n</tool_call>\n'
    'Done, both are on their way.')


def fixed_ids():
    """Deterministic call ids, so events from different splits compare equal."""
    counter = iter(range(10_000))
    return lambda: f"{next(counter):024d}"


def parse_pieces(fmt, pieces, **options) -> tuple[list, ToolCallParser]:
    parser = ToolCallParser(fmt, new_id=fixed_ids(), **options)
    events = []
    for piece in pieces:
        events += parser.feed(piece)
    return events + parser.flush(), parser


def random_chunks(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, min(40, len(text) - 1))))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


def merged(events: list) -> list:
    """Adjacent text or argument deltas joined, so events compare whatever the split."""
    out = []
    for event in events:
        if out and type(event) is type(out[-1]) and isinstance(event, TextDelta):
            out[-1] = TextDelta(out[-1].text + event.text)
        elif out and type(event) is type(out[-1]) and isinstance(event, ToolArgsDelta):
            out[-1] = ToolArgsDelta(out[-1].partial_json + event.partial_json)
        else:
            out.append(event)
    return out


def check_argument_streams(events: list) -> list[dict]:
    """Every call's argument pieces, concatenated, parse as a JSON prefix after each piece (as the Python SDK
    parses them, with jiter's partial mode) and as a JSON object at the end; returns those objects."""
    inputs, current = [], None
    for event in events:
        if isinstance(event, ToolCallStart):
            current = ""
        elif isinstance(event, ToolArgsDelta):
            assert current is not None, "arguments outside a call"
            assert event.partial_json, "empty argument piece"
            current += event.partial_json
            jiter.from_json(current.encode(), partial_mode="trailing-strings")
        elif isinstance(event, BlockEnd) and current is not None:
            value = json.loads(current)
            assert isinstance(value, dict), current
            inputs.append(value)
            current = None
    assert current is None, "a call was never closed"
    return inputs


def text_of(events: list) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))
