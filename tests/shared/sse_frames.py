"""The SSE framing every stream must have, checked strictly: shared by the API tests and the fuzz invariants."""
from __future__ import annotations

import json


def parse_sse(text: str) -> list[tuple[str, dict]]:
    """Every event must be `event: NAME` then `data: JSON` (one line each) then a blank line, with the JSON's
    type equal to NAME: the framing the SDKs need (a data-only event is silently dropped by them)."""
    assert text.endswith("\n\n")
    events = []
    for chunk in text[:-2].split("\n\n"):
        lines = chunk.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), chunk
        name, data = lines[0][len("event: "):], json.loads(lines[1][len("data: "):])
        assert data["type"] == name
        events.append((name, data))
    return events
