"""One token choice for all the rows of a step: constraints row by row, then one sampler, then one copy to the host.

Each row's constraints (thinking budget, tool grammar) are state machines of that row; they act on its line of the
step's `[rows, vocab]` logits, in place, and only where they have something to do (a row with no processors costs
nothing). The sampler then works on all rows at once: greedy rows take an argmax together; sampled rows are warped
with transformers' own warpers in generate()'s order (temperature, top_k, top_p), as one batch per distinct setting,
and drawn together. The chosen ids come to the host in one `.tolist()`, the step's only sync.
"""
from __future__ import annotations

from collections import defaultdict

import torch
from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from ..request import Sampling


def constrain_rows(rows: list, logits: torch.Tensor) -> dict[int, Exception]:
    """Each row's processors on its line of `logits` ([rows, vocab] float32, changed in place). A row whose
    processor raises is returned with its error, its line reset so that sampling the others is unaffected."""
    failed = {}
    for index, row in enumerate(rows):
        if row.processors:
            line = logits[index:index + 1]
            try:
                constrained = row.constrain(line)
            except Exception as error:
                failed[index] = error
                line.zero_()
                continue
            if constrained is not line:
                line.copy_(constrained)
    return failed


def choose_tokens(rows: list, logits: torch.Tensor) -> list[int]:
    """Each row's token from its (constrained) line of `logits`, [rows, vocab], by the row's own sampling."""
    groups: dict[Sampling | None, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        groups[None if row.sampling.temperature <= 0 else row.sampling].append(index)
    if list(groups) == [None]:
        return logits.argmax(-1).tolist()            # all greedy: the common case, one op
    chosen = torch.empty(len(rows), dtype=torch.long, device=logits.device)
    for sampling, indices in groups.items():
        where = torch.tensor(indices, device=logits.device)
        scores = logits.index_select(0, where)
        chosen[where] = scores.argmax(-1) if sampling is None else _draw(sampling, scores)
    return chosen.tolist()


def _draw(sampling: Sampling, scores: torch.Tensor) -> torch.Tensor:
    warpers = []
    if sampling.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(sampling.temperature))
    if sampling.top_k:
        warpers.append(TopKLogitsWarper(sampling.top_k))
    if sampling.top_p is not None and sampling.top_p < 1.0:
        warpers.append(TopPLogitsWarper(sampling.top_p))
    scores = LogitsProcessorList(warpers)(None, scores)
    return torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1)[:, 0]
