"""The detokenizer on the real SmolLM2 tokenizer: exact text, exact ids, released token by token."""
from __future__ import annotations

import pytest

from app.engine.text.detokenizer import Detokenizer

SAMPLE = "Héllo wörld — 世界 🙂 done.\nNext line:  spaced"


def detokenize(tokenizer, ids, *, end_of_turn=(), shown_special_ids=()):
    detokenizer = Detokenizer(tokenizer, end_of_turn_ids=end_of_turn, shown_special_ids=shown_special_ids)
    pieces = [detokenizer.push(token_id) for token_id in ids]
    pieces.append(detokenizer.finish())
    return detokenizer, [piece for piece in pieces if piece]


def test_text_matches_a_full_decode_including_split_multibyte_characters(smollm_tokenizer):
    ids = smollm_tokenizer(SAMPLE, add_special_tokens=False)["input_ids"]
    detokenizer, pieces = detokenize(smollm_tokenizer, ids)
    assert "".join(pieces) == SAMPLE
    assert all("\ufffd" not in piece for piece in pieces)   # half a character is never released
    assert detokenizer.token_ids == ids and detokenizer.generated_tokens == len(ids)


def test_text_is_released_token_by_token_not_word_by_word(smollm_tokenizer):
    ids = smollm_tokenizer("abc defghijklmnop", add_special_tokens=False)["input_ids"]
    detokenizer = Detokenizer(smollm_tokenizer)
    assert all(detokenizer.push(token_id) for token_id in ids)


def test_end_of_turn_is_counted_decodes_to_nothing_and_ends_the_output(smollm_tokenizer):
    eos = smollm_tokenizer.eos_token_id
    ids = smollm_tokenizer("Hi there", add_special_tokens=False)["input_ids"]
    detokenizer, pieces = detokenize(smollm_tokenizer, ids + [eos], end_of_turn={eos})
    assert "".join(pieces) == "Hi there"
    assert detokenizer.token_ids == ids + [eos]
    assert detokenizer.ended_with_end_of_turn
    with pytest.raises(ValueError):
        detokenizer.push(eos)


def test_special_thinking_markers_can_be_shown_while_other_special_tokens_stay_hidden(native_thinking_tokenizer):
    tokenizer = native_thinking_tokenizer                  # "<think>" and "</think>" are special tokens here
    markers = set(tokenizer.convert_tokens_to_ids(["<think>", "</think>"]))
    ids = tokenizer("<think>\nHmm 世界\n</think>\n\nDone.<|im_end|>", add_special_tokens=False)["input_ids"]
    _, hidden = detokenize(tokenizer, ids)
    _, shown = detokenize(tokenizer, ids, shown_special_ids=markers)
    assert "".join(hidden) == "\nHmm 世界\n\n\nDone."
    assert "".join(shown) == "<think>\nHmm 世界\n</think>\n\nDone."
