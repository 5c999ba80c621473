"""Token-level figures (`GenerationRequest.logprobs`) on the tiny model: each generated token's log-probability and
entropy under the model's own distribution, the likeliest alternatives, thinking and answer apart."""
from __future__ import annotations

import torch
from engine_helpers import chat, final

from app.engine.request import Sampling, ThinkingSettings


def test_each_token_has_the_models_own_logprob_entropy_and_alternatives(engine, tiny_model):
    request = chat(max_new_tokens=6, logprobs=3)
    finished = final(list(engine.submit(request).events()))
    answer = finished.stats["logprobs"]["answer"]
    assert finished.stats["logprobs"]["thinking"]["tokens"] == []
    assert len(answer["tokens"]) == finished.usage.output_tokens == 6
    for figure in answer["tokens"]:
        assert figure["logprob"] <= 0 and figure["entropy"] >= 0 and len(figure["top"]) == 3
        assert figure["top"][0]["id"] == figure["id"]                # greedy: the likeliest token was chosen
        assert figure["top"][0]["logprob"] == figure["logprob"]
        assert [t["logprob"] for t in figure["top"]] == sorted((t["logprob"] for t in figure["top"]), reverse=True)
    # The first token's figures are those of one forward over the prompt.
    ids = torch.tensor([engine.prepare(request).ids])
    with torch.inference_mode():
        logprobs = torch.log_softmax(tiny_model(ids).logits[0, -1].float(), dim=-1)
    first = answer["tokens"][0]
    assert abs(first["logprob"] - logprobs[first["id"]].item()) < 1e-4
    assert abs(first["entropy"] + (logprobs.exp() * logprobs).sum().item()) < 1e-3
    assert abs(answer["mean_logprob"] - sum(t["logprob"] for t in answer["tokens"]) / 6) < 1e-4


def test_thinking_tokens_and_answer_tokens_are_reported_apart(engine):
    # A budget of 12 forces the close: a thinking section of exactly 12 tokens, then the answer.
    request = chat(max_new_tokens=20, logprobs=0, thinking=ThinkingSettings(budget_tokens=12),
                   sampling=Sampling(temperature=1.0, seed=3))
    finished = final(list(engine.submit(request).events()))
    figures = finished.stats["logprobs"]
    assert len(figures["thinking"]["tokens"]) == finished.stats["thinking_tokens"] == 12
    assert len(figures["thinking"]["tokens"]) + len(figures["answer"]["tokens"]) == finished.usage.output_tokens
    # The forced closing tokens carry what the model thought of them, not log(1) = 0.
    assert all("top" not in figure for figure in figures["answer"]["tokens"])
    assert any(figure["logprob"] < -0.01 for figure in figures["thinking"]["tokens"][-3:])


def test_nothing_is_computed_or_reported_unless_asked(engine):
    finished = final(list(engine.submit(chat(max_new_tokens=4)).events()))
    assert "logprobs" not in (finished.stats or {})
