"""The forward passes the loop makes (prefill, decode, and a prompt's images through the vision tower), with the
shapes they take. Nothing else here calls the model."""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from ..model.vision import embed_with_images, image_features
from .batch import DecodeBatch


@dataclass(frozen=True)
class ChunkImages:
    """What a prefill chunk with image placeholders needs: the placeholder id, the prompt's image features
    ([placeholders, hidden]) and how many placeholders came before the chunk."""
    token_id: int
    features: torch.Tensor
    offset: int


class ModelRunner:
    """Called from the loop's step, which runs in torch.inference_mode."""

    def __init__(self, model, device: torch.device):
        self.model = model
        self.device = device
        # Most causal LMs can compute the head for the last position only; a prefill then skips [n, vocab] logits.
        self._last_logits_only = "logits_to_keep" in inspect.signature(model.forward).parameters

    def prefill(self, cache: DynamicCache, ids: list[int], start: int,
                images: ChunkImages | None = None) -> torch.Tensor:
        """Feed one row's tokens at positions start.. into its own cache ([1, ., start, .] → [1, ., start+n, .]).
        With `images`, the chunk's image placeholders read as their image features. Returns the logits after the
        last of them, [1, vocab] float32."""
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)                   # [1, n]
        positions = torch.arange(start, start + len(ids), device=self.device)[None, :]          # [1, n]
        extra = {"logits_to_keep": 1} if self._last_logits_only else {}
        if images is None:
            extra["input_ids"] = input_ids
        else:
            extra["inputs_embeds"] = embed_with_images(self.model, input_ids, images.token_id, images.features,
                                                       images.offset)                          # [1, n, hidden]
        out = self.model(position_ids=positions, past_key_values=cache, use_cache=True, **extra)
        return out.logits[:, -1, :].float()                                                       # [1, vocab]

    def image_features(self, image_inputs: dict) -> torch.Tensor:
        """A prompt's images through the vision tower: [placeholder tokens, hidden]."""
        return image_features(self.model, image_inputs, self.device)

    def decode_step(self, batch: DecodeBatch, tokens: list[int], positions: list[int]) -> torch.Tensor:
        """One token for every row of the batch: tokens[i] at position positions[i] (its real position, padding
        not counted). The cache grows by one column. Returns [rows, vocab] float32."""
        input_ids = torch.tensor(tokens, dtype=torch.long, device=self.device)[:, None]       # [rows, 1]
        position_ids = torch.tensor(positions, dtype=torch.long, device=self.device)[:, None]  # [rows, 1]
        out = self.model(input_ids=input_ids, position_ids=position_ids, past_key_values=batch.cache,
                         attention_mask=batch.attention_mask(self.device), use_cache=True)
        batch.length += 1
        return out.logits[:, -1, :].float()                                                       # [rows, vocab]
