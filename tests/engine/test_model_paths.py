"""Models whose KV cache cannot live in the pool (sliding-window or linear-attention layers) are still served
correctly: one row at a time, without the prefix cache, through the same step loop."""
from __future__ import annotations

import pytest
import torch
from engine_helpers import chat, final, text_of
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

from app.engine.scheduler.forward import cache_is_poolable


@pytest.fixture(scope="module")
def sliding_window_model(smollm_tokenizer):
    torch.manual_seed(0)
    config = MistralConfig(vocab_size=len(smollm_tokenizer), hidden_size=64, intermediate_size=128,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, sliding_window=16,
                           max_position_embeddings=4096, eos_token_id=smollm_tokenizer.eos_token_id)
    return MistralForCausalLM(config).eval()


def test_which_caches_can_live_in_the_pool(sliding_window_model, tiny_model):
    assert cache_is_poolable(tiny_model)
    assert not cache_is_poolable(sliding_window_model)
    full_attention_mistral = MistralForCausalLM(MistralConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, sliding_window=None))
    assert cache_is_poolable(full_attention_mistral)
    assert cache_is_poolable(LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                                           num_hidden_layers=1, num_attention_heads=2)))


def test_a_sliding_window_model_runs_one_row_at_a_time_and_matches_generate(make_engine, sliding_window_model,
                                                                            smollm_tokenizer):
    engine = make_engine(model=sliding_window_model, prefill_chunk=8)   # prompts longer than the window, in chunks
    stats = engine.stats()
    assert stats["batched"] is False and stats["max_batch_size"] == 1
    assert stats["prefix_cache"]["enabled"] is False
    requests = [chat("A prompt that is longer than the sliding window of sixteen tokens.", max_new_tokens=20),
                chat("Another one, also long enough to need more than one window.", max_new_tokens=20)]
    together = [list(handle.events(timeout=60)) for handle in [engine.submit(r) for r in requests]]
    for request, events in zip(requests, together):
        ids = smollm_tokenizer(engine.render_prompt(request), add_special_tokens=False, return_tensors="pt")
        expected = sliding_window_model.generate(ids["input_ids"], attention_mask=ids["attention_mask"],
                                                 max_new_tokens=20, do_sample=False)[0, ids["input_ids"].shape[1]:]
        assert text_of(events) == smollm_tokenizer.decode(expected, skip_special_tokens=True)
        assert final(events).usage.output_tokens == len(expected)
    assert engine.stats()["finished"] == 2
