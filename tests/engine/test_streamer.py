"""The token streamer on the real SmolLM2 tokenizer: exact text, exact ids, whichever way tokens arrive."""
from __future__ import annotations

import torch

from app.engine.streamer import TokenStreamer

SAMPLE = "Héllo wörld — 世界 🙂 done.\nNext line:  spaced"


def stream(tokenizer, ids, *, end_of_turn=(), via_catch_up=False, shown_special_ids=()):
    pieces = []
    streamer = TokenStreamer(tokenizer, prompt_length=2, end_of_turn_ids=end_of_turn, on_text=pieces.append,
                             shown_special_ids=shown_special_ids)
    prompt = [1, 9690]
    streamer.put(torch.tensor([prompt]))            # generate() hands over the prompt first; it is skipped
    for i, token_id in enumerate(ids):
        if via_catch_up:                             # transformers 5 order: criteria first, then put()
            streamer.catch_up(torch.tensor([prompt + ids[:i + 1]]))
        streamer.put(torch.tensor([token_id]))
    streamer.end()
    return streamer, pieces


def test_text_matches_a_full_decode_including_split_multibyte_characters(smollm_tokenizer):
    ids = smollm_tokenizer(SAMPLE, add_special_tokens=False)["input_ids"]
    streamer, pieces = stream(smollm_tokenizer, ids)
    assert "".join(pieces) == SAMPLE
    assert all("\ufffd" not in piece for piece in pieces)   # half a character is never released
    assert streamer.token_ids == ids and streamer.generated_tokens == len(ids)


def test_catch_up_and_put_count_each_token_once(smollm_tokenizer):
    ids = smollm_tokenizer(SAMPLE, add_special_tokens=False)["input_ids"]
    streamer, pieces = stream(smollm_tokenizer, ids, via_catch_up=True)
    assert "".join(pieces) == SAMPLE
    assert streamer.token_ids == ids


def test_text_is_released_token_by_token_not_word_by_word(smollm_tokenizer):
    ids = smollm_tokenizer("abc defghijklmnop", add_special_tokens=False)["input_ids"]
    _, pieces = stream(smollm_tokenizer, ids)
    assert len(pieces) == len(ids)


def test_end_of_turn_is_counted_decodes_to_nothing_and_ends_the_output(smollm_tokenizer):
    eos = smollm_tokenizer.eos_token_id
    ids = smollm_tokenizer("Hi there", add_special_tokens=False)["input_ids"]
    streamer, pieces = stream(smollm_tokenizer, ids + [eos, eos, eos], end_of_turn={eos})   # then padding
    assert "".join(pieces) == "Hi there"
    assert streamer.token_ids == ids + [eos]
    assert streamer.ended_with_end_of_turn


def test_without_a_callback_it_is_still_a_text_iterator(smollm_tokenizer):
    ids = smollm_tokenizer("one two", add_special_tokens=False)["input_ids"]
    streamer = TokenStreamer(smollm_tokenizer, prompt_length=1)
    streamer.put(torch.tensor([[1]]))
    for token_id in ids:
        streamer.put(torch.tensor([token_id]))
    streamer.end()
    assert "".join(streamer) == "one two"


def test_special_thinking_markers_can_be_shown_while_other_special_tokens_stay_hidden(native_thinking_tokenizer):
    tokenizer = native_thinking_tokenizer                  # "<think>" and "</think>" are special tokens here
    markers = set(tokenizer.convert_tokens_to_ids(["<think>", "</think>"]))
    ids = tokenizer("<think>\nHmm 世界\n</think>\n\nDone.<|im_end|>", add_special_tokens=False)["input_ids"]
    _, hidden = stream(tokenizer, ids)
    _, shown = stream(tokenizer, ids, shown_special_ids=markers)
    assert "".join(hidden) == "\nHmm 世界\n\n\nDone."
    assert "".join(shown) == "<think>\nHmm 世界\n</think>\n\nDone."
