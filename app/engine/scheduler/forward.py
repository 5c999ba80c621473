"""The two forward passes the loop makes, with the shapes they take. Nothing else here calls the model."""
from __future__ import annotations

import inspect

import torch
from transformers import DynamicCache

from .batch import DecodeBatch


class ModelRunner:
    """Called from the loop's step, which runs in torch.inference_mode."""

    def __init__(self, model, device: torch.device):
        self.model = model
        self.device = device
        # Most causal LMs can compute the head for the last position only; a prefill then skips [n, vocab] logits.
        self._last_logits_only = "logits_to_keep" in inspect.signature(model.forward).parameters

    def prefill(self, cache: DynamicCache, ids: list[int], start: int) -> torch.Tensor:
        """Feed one row's tokens at positions start.. into its own cache ([1, ., start, .] → [1, ., start+n, .]).
        Returns the logits after the last of them, [1, vocab] float32."""
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)                   # [1, n]
        positions = torch.arange(start, start + len(ids), device=self.device)[None, :]          # [1, n]
        extra = {"logits_to_keep": 1} if self._last_logits_only else {}
        out = self.model(input_ids=input_ids, position_ids=positions, past_key_values=cache, use_cache=True,
                         **extra)
        return out.logits[:, -1, :].float()                                                       # [1, vocab]

    def decode_step(self, batch: DecodeBatch, tokens: list[int], positions: list[int]) -> torch.Tensor:
        """One token for every row of the batch: tokens[i] at position positions[i] (its real position, padding
        not counted). The cache grows by one column. Returns [rows, vocab] float32."""
        input_ids = torch.tensor(tokens, dtype=torch.long, device=self.device)[:, None]       # [rows, 1]
        position_ids = torch.tensor(positions, dtype=torch.long, device=self.device)[:, None]  # [rows, 1]
        out = self.model(input_ids=input_ids, position_ids=position_ids, past_key_values=batch.cache,
                         attention_mask=batch.attention_mask(self.device), use_cache=True)
        batch.length += 1
        return out.logits[:, -1, :].float()                                                       # [rows, vocab]
