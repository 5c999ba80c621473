"""Token-level figures for the rows that ask for them (`GenerationRequest.logprobs`): each chosen token's
log-probability, the entropy of the distribution it was drawn from, and the k likeliest alternatives.

They are the model's own distribution: the logits as the forward gave them, before any constraint. So a token the
thinking budget or a grammar forced carries what the model thought of it (a research question: how surprised was
it?), not the log(1) of a forced choice. Only the asking rows are computed, in one batched log_softmax a step,
before the constraints change the logits in place; a step without such a row costs one scan of the rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TokenFigure:
    token_id: int
    logprob: float
    entropy: float                       # nats
    top: tuple[tuple[int, float], ...]   # (id, logprob), likeliest first


def snapshot(rows: list, logits: torch.Tensor) -> tuple[list[int], torch.Tensor] | None:
    """The log-probabilities of the asking rows' lines ([rows, vocab] logits, not yet constrained); None when no
    row asks."""
    asking = [index for index, row in enumerate(rows) if row.logprobs is not None]
    if not asking:
        return None
    lines = logits if len(asking) == len(rows) else logits.index_select(
        0, torch.tensor(asking, device=logits.device))
    return asking, torch.log_softmax(lines.float(), dim=-1)


def record(rows: list, taken: tuple[list[int], torch.Tensor] | None, tokens: list[int]) -> None:
    """Append each asking row's figure for the token it chose (`tokens`, one per row)."""
    if taken is None:
        return
    asking, logprobs = taken
    chosen = torch.tensor([tokens[index] for index in asking], device=logprobs.device)
    chosen_logprobs = logprobs.gather(1, chosen[:, None])[:, 0].tolist()
    # p·log p is 0 where p is 0 (a -inf logit): nan_to_num keeps 0 · -inf from poisoning the sum.
    entropies = (-(logprobs.exp() * logprobs).nan_to_num(0.0).sum(-1)).tolist()
    k = max(rows[index].logprobs for index in asking)
    top_values, top_ids = (part.tolist() for part in logprobs.topk(k, dim=-1)) if k else ([], [])
    for line, index in enumerate(asking):
        wanted = rows[index].logprobs
        top = tuple(zip(top_ids[line][:wanted], top_values[line][:wanted])) if wanted else ()
        rows[index].token_figures.append(TokenFigure(tokens[index], chosen_logprobs[line], entropies[line], top))


def report(figures: list[TokenFigure], thinking_tokens: int, tokenizer) -> dict:
    """The figures for the response's `thinkserve.logprobs`: the thinking section's tokens and the answer's apart
    (the first `thinking_tokens` are thinking), each token with its text, and each part's means."""
    def part(items: list[TokenFigure]) -> dict:
        tokens = [{"id": f.token_id, "token": tokenizer.decode([f.token_id]), "logprob": round(f.logprob, 5),
                   "entropy": round(f.entropy, 5),
                   **({"top": [{"id": i, "token": tokenizer.decode([i]), "logprob": round(p, 5)} for i, p in f.top]}
                      if f.top else {})} for f in items]
        count = len(items)
        return {"tokens": tokens,
                "mean_logprob": round(sum(f.logprob for f in items) / count, 5) if count else None,
                "mean_entropy": round(sum(f.entropy for f in items) / count, 5) if count else None}

    return {"thinking": part(figures[:thinking_tokens]), "answer": part(figures[thinking_tokens:])}
