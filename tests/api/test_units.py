"""Unit tests of the api layer's pieces: schema error paths, the block assembler's index discipline, the SSE
encoder and thinking signatures."""
from __future__ import annotations

import json

import pytest

from app.api.errors import InvalidRequestError
from app.api.schema import _path, parse_count_tokens_request, parse_messages_request
from app.api.signatures import ThinkingSigner, load_or_create_key
from app.api.stream import BlockAssembler, sse
from app.engine.events import (BlockEnd, Finished, StopReason, TextDelta, ThinkingDelta, ToolArgsDelta,
                               ToolCallStart, Usage)


@pytest.mark.parametrize("loc, path", [
    (("messages", 2, "content", 0, "text", "text"), "messages.2.content.0.text"),
    (("messages", 0, "content", 1, "tool_result", "content", "list[...]", 0, "text", "text"),
     "messages.0.content.1.content.0.text"),
    (("messages", 0, "content", 0, "tool_result", "content", "str"), "messages.0.content.0.content"),
    (("system", "list[TextBlock]", 0, "text"), "system.0.text"),
    (("system", "str"), "system"),
    (("messages", 3, "content"), "messages.3.content"),
    (("messages", 1, "content", 0, "tool_use", "input"), "messages.1.content.0.input"),
    (("tools", 0, "name"), "tools.0.name"),
    (("messages", 0, "content", 0, "function-after[_non_blank(), str]"), "messages.0.content.0"),
    (("tool_choice", "type"), "tool_choice.type"),
    ((), ""),
])
def test_path(loc, path):
    assert _path(loc) == path


def test_a_field_named_like_a_block_type_is_kept():
    # the tag is dropped only when a field follows it: (…, 0, "text") is the block's own "text" field
    assert _path(("messages", 0, "content", 0, "text")) == "messages.0.content.0.text"


def test_deepest_error_wins():
    with pytest.raises(InvalidRequestError) as caught:
        parse_messages_request({"model": "m", "max_tokens": 1, "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                          "content": [{"type": "text", "text": ""}]}]}]}, min_thinking_budget=1)
    assert caught.value.message == "messages.0.content.0.content.0.text: text content blocks must be non-empty"


def test_min_thinking_budget_comes_from_the_caller():
    request = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
               "thinking": {"type": "enabled", "budget_tokens": 5}}
    assert parse_messages_request(request, min_thinking_budget=1).thinking.budget_tokens == 5
    with pytest.raises(InvalidRequestError, match="greater than or equal to 6"):
        parse_messages_request(request, min_thinking_budget=6)


def test_count_tokens_needs_no_max_tokens_and_ignores_it():
    parsed = parse_count_tokens_request({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert parsed.model == "m" and len(parsed.messages) == 1


# --- BlockAssembler ------------------------------------------------------------------------------------------

def assemble(events, show_thinking=True):
    assembler = BlockAssembler(5, sign_thinking=lambda text: f"sig({text})", show_thinking=show_thinking)
    return [pair for event in events for pair in assembler.feed(event)]


def test_assembler_numbers_blocks_in_order_without_overlap():
    out = assemble([TextDelta("a"), ThinkingDelta("t"), TextDelta("b"), BlockEnd(), BlockEnd(),
                    ToolCallStart("c1", "f"), ToolArgsDelta('{"x"'), ToolArgsDelta(": 1}"),
                    ToolCallStart("c2", "g"), Finished(StopReason.TOOL_CALL, Usage(5, 9))])
    assert [(name, data.get("index")) for name, data in out] == [
        ("content_block_start", 0), ("content_block_delta", 0),
        ("content_block_stop", 0), ("content_block_start", 1), ("content_block_delta", 1),
        ("content_block_delta", 1), ("content_block_stop", 1),          # signature, then stop
        ("content_block_start", 2), ("content_block_delta", 2), ("content_block_stop", 2),
        ("content_block_start", 3), ("content_block_delta", 3), ("content_block_delta", 3),
        ("content_block_stop", 3), ("content_block_start", 4), ("content_block_stop", 4),
        ("message_delta", None), ("message_stop", None)]
    assert out[5][1]["delta"] == {"type": "signature_delta", "signature": "sig(t)"}
    assert out[-2][1] == {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                          "usage": {"input_tokens": 5, "output_tokens": 9, "cache_creation_input_tokens": 0,
                                    "cache_read_input_tokens": 0}}


def test_assembler_ignores_empty_deltas_and_stray_block_ends():
    assert assemble([BlockEnd(), TextDelta(""), ThinkingDelta(""), BlockEnd()]) == []
    out = assemble([TextDelta("a"), TextDelta(""), TextDelta("b")])
    assert [d["delta"]["text"] for n, d in out if n == "content_block_delta"] == ["a", "b"]


def test_assembler_signs_each_thinking_block_separately():
    out = assemble([ThinkingDelta("one"), BlockEnd(), ThinkingDelta("two"), ThinkingDelta("!"), BlockEnd()])
    signatures = [d["delta"]["signature"] for n, d in out if d.get("delta", {}).get("type") == "signature_delta"]
    assert signatures == ["sig(one)", "sig(two!)"]


def test_assembler_hidden_thinking_still_signs_the_full_text():
    out = assemble([ThinkingDelta("se"), ThinkingDelta("cret"), Finished(StopReason.END, Usage(5, 2))],
                   show_thinking=False)
    assert [d["delta"]["type"] for n, d in out if n == "content_block_delta"] == ["signature_delta"]
    assert out[1][1]["delta"]["signature"] == "sig(secret)"


def test_assembler_reports_engine_stats_as_an_extension():
    out = assemble([Finished(StopReason.END, Usage(5, 1), stats={"thinking_tokens": 3})])
    assert out[0][1]["thinkserve"] == {"thinking_tokens": 3}
    assert "thinkserve" not in assemble([Finished(StopReason.END, Usage(5, 1))])[0][1]


# --- SSE encoding --------------------------------------------------------------------------------------------

def test_sse_encoding():
    assert sse("ping", {"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'
    encoded = sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                          "delta": {"type": "text_delta", "text": "a\nb\n\nc é 🙂"}})
    text = encoded.decode("utf-8")
    assert text.count("\n") == 3 and text.endswith("\n\n")           # newlines in the payload stay escaped
    assert json.loads(text.split("\n")[1][len("data: "):])["delta"]["text"] == "a\nb\n\nc é 🙂"
    assert "é 🙂" in text                                             # UTF-8, not \\u escapes


# --- signatures ----------------------------------------------------------------------------------------------

def test_sign_and_verify(tmp_path):
    signer = ThinkingSigner(load_or_create_key("", str(tmp_path)), "model-a")
    signature = signer.sign("I think so.")
    assert signer.verify("I think so.", signature)
    assert not signer.verify("I think so!", signature)
    assert not signer.verify("I think so.", signature[:-4] + "AAAA")
    assert not signer.verify("I think so.", "")
    assert signer.sign("I think so.") == signature                   # deterministic


def test_key_is_persisted_and_reused(tmp_path):
    key = load_or_create_key("", str(tmp_path / "data"))
    assert (tmp_path / "data" / "signing.key").read_bytes() == key and len(key) == 32
    assert (tmp_path / "data" / "signing.key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_key("", str(tmp_path / "data")) == key
    first = ThinkingSigner(key, "model-a").sign("x")
    assert ThinkingSigner(load_or_create_key("", str(tmp_path / "data")), "model-a").verify("x", first)
    assert load_or_create_key("", str(tmp_path / "other")) != key


def test_explicit_signing_key_wins(tmp_path):
    assert load_or_create_key("s3cret", str(tmp_path)) == b"s3cret"
    assert not (tmp_path / "signing.key").exists()


def test_signature_is_bound_to_model_and_key(tmp_path):
    key = load_or_create_key("", str(tmp_path))
    signature = ThinkingSigner(key, "model-a").sign("x")
    assert ThinkingSigner(key, "model-b").sign("x") != signature
    assert not ThinkingSigner(key, "model-b").verify("x", signature)
    assert not ThinkingSigner(b"another key", "model-a").verify("x", signature)


def test_app_signatures_survive_a_restart(make_app, engine):
    before = make_app(engine).extensions["thinkserve"].signer.sign("plan")
    assert make_app(engine).extensions["thinkserve"].signer.verify("plan", before)
