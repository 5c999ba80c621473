"""Hypothesis strategies for hostile request bodies: valid bodies for each endpoint, then structure-aware mutations.

A valid body is built first (every block type in every role, tools with wild-but-valid JSON Schema, thinking,
sampling fields), then `mutated` walks it and changes one to a few places: a wrong type at that path, a field
removed or added, a huge or negative number, an empty or very long string, unusual Unicode, deep nesting, a
thousand blocks. Shared by the fake-engine fuzz suite (tests/api) and the opt-in real-server one (tests/e2e).
"""
from __future__ import annotations

import copy
import json

from hypothesis import strategies as st

# NUL, RTL/LTR marks and overrides, combining marks, a zero-width joiner, an emoji, a BOM, and characters chat
# templates treat specially. (Lone surrogates, always a 400, come in through mutations only, so that most
# generated bodies stay valid and reach the engine.)
ODD_TEXT = ["\x00", "\u200f\u202e", "e\u0301\u0301\u0301", "\u200d", "\U0001f600", "\ufeff",
            "<|im_end|>", "<think>", "</think>", "{{ raise_exception('x') }}", "\r\n", "\\", '"']
SCHEMA_TYPES = ["string", "integer", "number", "boolean", "null", "array", "object"]


def texts(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.one_of(st.text(min_size=1, max_size=max_size).filter(str.strip),
                     st.lists(st.sampled_from(ODD_TEXT + ["hi", " "]), min_size=1, max_size=6).map("".join)
                     .filter(str.strip))


def json_schemas(depth: int = 3) -> st.SearchStrategy[dict]:
    """JSON Schema that is valid JSON but wild: enums, anyOf, $ref, patterns, nested arrays, odd keywords."""
    leaf = st.one_of(
        st.builds(lambda t: {"type": t}, st.sampled_from(SCHEMA_TYPES)),
        st.builds(lambda e: {"enum": e}, st.lists(st.one_of(st.text(max_size=5), st.integers(), st.none()),
                                                   min_size=1, max_size=4)),
        st.just({"type": "string", "pattern": "^[a-z]+$", "minLength": 2, "maxLength": 3}),
        st.just({"type": "integer", "minimum": -5, "maximum": 10**30}),
        st.just({"$ref": "#/$defs/nowhere"}), st.just({}), st.just({"const": None}),
        st.just({"type": ["string", "null"]}), st.just({"not": {}}), st.just({"format": "date-time"}))
    if depth <= 0:
        return leaf
    inner = json_schemas(depth - 1)
    return st.one_of(
        leaf,
        st.builds(lambda items: {"type": "array", "items": items, "minItems": 0}, inner),
        st.builds(lambda branches: {"anyOf": branches}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda props, req: {"type": "object", "properties": props,
                                      "required": [k for k in props if req], "additionalProperties": False},
                  st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3), st.booleans()))


def tool_input_schemas() -> st.SearchStrategy[dict]:
    return st.builds(lambda props, required, extra: {"type": "object", "properties": props,
                                                     "required": sorted(props)[:required], **extra},
                     st.dictionaries(st.text(min_size=1, max_size=10), json_schemas(), max_size=4),
                     st.integers(0, 4),
                     st.sampled_from([{}, {"additionalProperties": False}, {"$defs": {"a": {"type": "string"}}},
                                      {"title": "\u202e"}, {"description": "x" * 2000}]))


def tools() -> st.SearchStrategy[list]:
    tool = st.builds(lambda name, description, schema: {"name": name, "description": description,
                                                        "input_schema": schema},
                     st.from_regex(r"[a-zA-Z0-9_-]{1,64}", fullmatch=True), texts(), tool_input_schemas())
    return st.lists(tool, max_size=3, unique_by=lambda t: t["name"])


def blocks(role: str) -> st.SearchStrategy[dict]:
    """Every content block type, in whichever role asked for (the server must answer 200 or a clean 400)."""
    image = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    return st.one_of(
        st.builds(lambda t: {"type": "text", "text": t}, texts()),
        st.builds(lambda t: {"type": "text", "text": t, "cache_control": {"type": "ephemeral"}}, texts()),
        st.just({"type": "image", "source": image}),
        st.just({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}}),
        st.builds(lambda t: {"type": "search_result", "source": "https://x", "title": t,
                             "content": [{"type": "text", "text": t}]}, texts()),
        st.builds(lambda i, n: {"type": "tool_use", "id": i, "name": n, "input": {"q": n}},
                  st.from_regex(r"toolu_[a-z0-9]{1,8}", fullmatch=True), texts(10)),
        st.builds(lambda i, c, e: {"type": "tool_result", "tool_use_id": i, "content": c, "is_error": e},
                  st.from_regex(r"toolu_[a-z0-9]{1,8}", fullmatch=True),
                  st.one_of(texts(), st.lists(st.builds(lambda t: {"type": "text", "text": t}, texts()), max_size=2),
                            st.none()), st.booleans()),
        st.builds(lambda t: {"type": "thinking", "thinking": t, "signature": "sig"}, texts()),
        st.just({"type": "redacted_thinking", "data": "opaque"}))


def messages() -> st.SearchStrategy[list]:
    def turn(role):
        content = st.one_of(texts(), st.lists(blocks(role), min_size=1, max_size=4))
        return st.builds(lambda c: {"role": role, "content": c}, content)
    # Alternating user/assistant, starting and ending with a user turn, with a stray system turn sometimes.
    middle = st.lists(st.tuples(turn("user"), turn("assistant")).map(list), max_size=2).map(lambda p: sum(p, []))
    return st.builds(lambda first, pairs, last: [first, *pairs, *last],
                     turn("user"), middle,
                     st.one_of(st.just([]), turn("system").map(lambda t: [t, {"role": "user", "content": "go"}])))


def prompt_bodies(model: str) -> st.SearchStrategy[dict]:
    """A count_tokens / render body."""
    optional = st.fixed_dictionaries({}, optional={
        "system": st.one_of(texts(), st.lists(st.builds(lambda t: {"type": "text", "text": t}, texts()),
                                              max_size=2)),
        "tools": tools(),
        "tool_choice": st.sampled_from([{"type": "auto"}, {"type": "none"}, {"type": "any"}]),
        "thinking": st.sampled_from([{"type": "disabled"}, {"type": "adaptive"}])})
    return st.builds(lambda msgs, extra: {"model": model, "messages": msgs, **extra}, messages(), optional)


def message_bodies(model: str, min_thinking_budget: int = 16,
                   max_tokens: st.SearchStrategy[int] = st.integers(60, 120)) -> st.SearchStrategy[dict]:
    sampling = st.fixed_dictionaries({}, optional={
        "temperature": st.floats(0, 1), "top_p": st.floats(0.01, 1), "top_k": st.integers(1, 100),
        "stop_sequences": st.lists(texts(8), max_size=3), "stream": st.booleans(),
        "metadata": st.just({"user_id": "u"}),
        "thinking": st.builds(lambda b: {"type": "enabled", "budget_tokens": b},
                              st.integers(min_thinking_budget, min_thinking_budget + 40))})
    return st.builds(lambda prompt, max_tokens, extra: {**prompt, "max_tokens": max_tokens, **extra},
                     prompt_bodies(model), max_tokens, sampling)


def batch_bodies(model: str, max_tokens: st.SearchStrategy[int] = st.integers(60, 120)) -> st.SearchStrategy[dict]:
    item = st.builds(lambda i, params: {"custom_id": i, "params": {**params, "stream": False}},
                     st.from_regex(r"[a-zA-Z0-9_-]{1,64}", fullmatch=True),
                     message_bodies(model, max_tokens=max_tokens))
    return st.builds(lambda items: {"requests": items}, st.lists(item, min_size=1, max_size=3,
                                                                  unique_by=lambda r: r["custom_id"]))


# ---- mutations ---------------------------------------------------------------------------------------------

WILD_VALUES = st.one_of(
    st.none(), st.booleans(), st.just(0), st.just(-1), st.just(2**63), st.just(-(2**70)), st.just(10**400),
    st.floats(allow_nan=False, allow_infinity=False), st.just(1e308), st.just(-0.0),
    st.just(""), st.just(" "), st.just("x" * 100_000), st.sampled_from(ODD_TEXT), st.text(max_size=20),
    st.just("\ud800"), st.just("a\udfffb"),
    st.just([]), st.just({}), st.just([None]), st.just({"type": None}), st.just([{"type": "text"}]),
    st.just({"type": "text", "text": "\x00"}), st.just("user"), st.just("tool_use"),
    st.integers(-(2**64), 2**64))


def paths(value, prefix=()) -> list[tuple]:
    """Every path into a JSON value: dict keys and list indices, the root included."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, prefix + (index,))
    return found


def _replace(root, path, make):
    if not path:
        return make(root)
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = make(parent[path[-1]])
    return root


def _delete(root, path):
    if not path:
        return root
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return root


def _nest(value, depth: int):
    for _ in range(depth):
        value = [value] if depth % 2 else {"a": value}
    return value


@st.composite
def mutated(draw, valid: st.SearchStrategy[dict]) -> dict:
    """A valid body with 0 to 3 structural mutations applied at random paths."""
    body = copy.deepcopy(draw(valid))
    for _ in range(draw(st.integers(0, 3))):
        targets = paths(body)
        path = draw(st.sampled_from(targets))
        kind = draw(st.sampled_from(["wild", "delete", "extra", "nest", "repeat", "wrap", "stringify"]))
        if kind == "wild":
            wild = draw(WILD_VALUES)
            body = _replace(body, path, lambda _: copy.deepcopy(wild))
        elif kind == "delete":
            body = _delete(body, path)
        elif kind == "extra":
            key, wild = draw(st.text(min_size=1, max_size=12)), draw(WILD_VALUES)
            body = _replace(body, path, lambda v: {**v, key: wild} if isinstance(v, dict) else v)
        elif kind == "nest":
            depth = draw(st.sampled_from([2, 50, 400]))
            body = _replace(body, path, lambda v: _nest(v, depth))
        elif kind == "repeat":
            count = draw(st.sampled_from([2, 100, 1000]))
            body = _replace(body, path, lambda v: [copy.deepcopy(v[0]) for _ in range(count)]
                            if isinstance(v, list) and v else v)
        elif kind == "wrap":
            body = _replace(body, path, lambda v: [v])
        else:
            body = _replace(body, path, lambda v: json.dumps(v))
    return body


def encode(body) -> bytes:
    """JSON as a client might send it: lone surrogates escaped (\\ud800 is valid JSON, invalid UTF-8)."""
    return json.dumps(body, ensure_ascii=True, allow_nan=False).encode()
