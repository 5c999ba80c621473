"""Choosing a row's next token from its processed logits, with the row's own temperature, top_k and top_p."""
from __future__ import annotations

import torch
from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from ..request import Sampling


class RowSampler:
    """Greedy (temperature 0) is an argmax, so its output is deterministic and the same batched or alone.
    Otherwise transformers' own warpers, in generate()'s order (temperature, top_k, top_p), then one draw."""

    def __init__(self, sampling: Sampling):
        self.greedy = sampling.temperature <= 0
        warpers = []
        if not self.greedy:
            if sampling.temperature != 1.0:
                warpers.append(TemperatureLogitsWarper(sampling.temperature))
            if sampling.top_k:
                warpers.append(TopKLogitsWarper(sampling.top_k))
            if sampling.top_p is not None and sampling.top_p < 1.0:
                warpers.append(TopPLogitsWarper(sampling.top_p))
        self._warpers = LogitsProcessorList(warpers)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> int:
        # scores: [1, vocab] float32, after the row's processors; input_ids: [1, tokens so far]
        if self.greedy:
            return int(scores[0].argmax())
        scores = self._warpers(input_ids, scores)
        return int(torch.multinomial(torch.softmax(scores[0], dim=-1), num_samples=1))
