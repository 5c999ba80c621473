"""One token choice for all the rows of a step: constraints row by row, then one sampler, then one copy to the host.

Each row's constraints (thinking budget, tool grammar) are state machines of that row; they decide on its line of the
step's `[rows, vocab]` logits (force a token, ban ids, hold it to a grammar) into one `StepMask`, which applies all
rows' decisions together, in place (a row with no processors costs nothing). The sampler then works on all rows at
once: one argmax for every row (the greedy rows' choice), and the sampled rows warped together, their temperature,
top_k and top_p as per-row tensors, and drawn with one multinomial. The chosen ids come to the host in one
`.tolist()`, the step's only sync.
"""
from __future__ import annotations

import torch

from ..request import Sampling
from ..step_mask import StepMask


def constrain_rows(rows: list, logits: torch.Tensor) -> dict[int, Exception]:
    """Each row's processors decide on its line of `logits` ([rows, vocab] float32) into one `StepMask`, which then
    changes every line at once, in place. A row whose processor raises is returned with its error, its line reset so
    that sampling the others is unaffected."""
    mask = StepMask(len(rows))
    failed = {}
    for index, row in enumerate(rows):
        if row.processors:
            try:
                row.constrain_into(mask, index, logits[index:index + 1])
            except Exception as error:
                failed[index] = error
                mask.drop(index)
    failed.update(mask.apply(logits))
    for index in failed:
        logits[index].zero_()
    return failed


def choose_tokens(rows: list, logits: torch.Tensor) -> list[int]:
    """Each row's token from its (constrained) line of `logits`, [rows, vocab], by the row's own sampling."""
    chosen = logits.argmax(-1)                       # the greedy rows' tokens: the common case, one op
    sampled = [index for index, row in enumerate(rows) if row.sampling.temperature > 0]
    shared = [index for index in sampled if rows[index].sampling.seed is None]
    if shared:
        where = torch.tensor(shared, device=logits.device)
        warped = warp([rows[index].sampling for index in shared], logits.index_select(0, where))
        chosen[where] = torch.multinomial(torch.softmax(warped, dim=-1), num_samples=1)[:, 0]
    for index in sampled:
        if rows[index].sampling.seed is not None:    # its own generator: one draw of its own
            warped = warp([rows[index].sampling], logits[index:index + 1])
            chosen[index] = torch.multinomial(torch.softmax(warped, dim=-1), num_samples=1,
                                              generator=rows[index].generator(logits.device))[0, 0]
    return chosen.tolist()


def warp(samplings: list[Sampling], scores: torch.Tensor) -> torch.Tensor:
    """Each line of `scores` ([rows, vocab]) warped by its own settings, given as per-row tensors: temperature, then top_k, then top_p, in generate()'s order and with its tie rules (top_k keeps every
    token scoring as high as the k-th; top_p keeps the smallest head whose mass reaches p, and at least one token)."""
    rows, vocab = scores.shape
    device = scores.device
    scores = scores / torch.tensor([s.temperature for s in samplings], device=device)[:, None]
    top_k = [min(s.top_k, vocab) if s.top_k else vocab for s in samplings]
    # A row without top_p keeps everything: not 1.0, which a cumulative sum of floats can reach early.
    top_p = [s.top_p if s.top_p is not None and s.top_p < 1.0 else float("inf") for s in samplings]
    if min(top_k) < vocab or min(top_p) < 1.0:
        ordered, order = scores.sort(dim=-1, descending=True)
        kth = ordered.gather(1, torch.tensor(top_k, device=device)[:, None] - 1)
        ordered = ordered.masked_fill(ordered < kth, float("-inf"))
        probabilities = torch.softmax(ordered, dim=-1)
        mass_before = probabilities.cumsum(dim=-1) - probabilities
        ordered = ordered.masked_fill(mass_before >= torch.tensor(top_p, device=device)[:, None], float("-inf"))
        scores = torch.empty_like(scores).scatter_(1, order, ordered)
    return scores
