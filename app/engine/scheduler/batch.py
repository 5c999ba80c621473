"""The running rows' KV cache: one transformers `DynamicCache`, left-padded so every row ends at the same column.

    keys/values of layer l: [rows, kv_heads, length, head_dim]
    row i holds its real tokens in columns pads[i]:length; columns before pads[i] are padding, masked out

A new row is joined by padding whichever side is shorter on the left; a finished row is dropped by selecting the
others, and padding every remaining row shares is cut off. transformers' `DynamicLayer.update` grows a layer by
concatenation, never in place, so a tensor handed out (to the prefix cache) is never changed afterwards.

Only caches made of plain full-attention `DynamicLayer`s can be padded, joined and cut this way. A model with
sliding-window or linear-attention layers keeps the cache transformers makes for it, and runs one row at a time.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


def new_cache(model) -> DynamicCache:
    return DynamicCache(config=model.config)


def cache_is_batchable(model) -> bool:
    """Whether this model's cache can be padded, joined, cut and cropped: every layer a plain DynamicLayer."""
    cache = new_cache(model)
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def cache_from_layers(model, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> DynamicCache:
    """A fresh cache holding these (keys, values) per layer, each [1, kv_heads, length, head_dim] (copied)."""
    cache = new_cache(model)
    for layer, (keys, values) in zip(cache.layers, layers):
        layer.update(keys, values)
    return cache


def cache_bytes(layers: list[tuple[torch.Tensor, torch.Tensor]]) -> int:
    return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)


class DecodeBatch:
    """The rows being decoded together and their padded cache. `rows` and `pads` run in the same order."""

    def __init__(self, batchable: bool):
        self.batchable = batchable
        self.rows: list = []
        self.pads: list[int] = []
        self.cache: DynamicCache | None = None
        self.length = 0                   # columns in the cache, padding included

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, row, cache: DynamicCache) -> None:
        """Join `row`, whose own cache ([1, ., row.fed, .]) holds exactly its fed tokens."""
        length = cache.get_seq_length()
        if not self.rows:
            self.rows, self.pads, self.cache, self.length = [row], [0], cache, length
            return
        if not self.batchable:
            raise RuntimeError("this model's cache cannot hold two rows")
        width = max(self.length, length)
        for mine, theirs in zip(self.cache.layers, cache.layers):
            mine.keys = torch.cat([_left_pad(mine.keys, width), _left_pad(theirs.keys, width)])
            mine.values = torch.cat([_left_pad(mine.values, width), _left_pad(theirs.values, width)])
        grown = width - self.length
        self.pads = [pad + grown for pad in self.pads] + [width - length]
        self.rows.append(row)
        self.length = width

    def remove(self, finished: set[int]) -> None:
        """Drop the rows at these indices; cut the padding that every remaining row shares."""
        keep = [i for i in range(len(self.rows)) if i not in finished]
        if not keep:
            self.rows, self.pads, self.cache, self.length = [], [], None, 0
            return
        self.rows = [self.rows[i] for i in keep]
        self.pads = [self.pads[i] for i in keep]
        shared = min(self.pads)
        index = torch.tensor(keep, device=self.cache.layers[0].keys.device)
        for layer in self.cache.layers:
            layer.keys = layer.keys[index, :, shared:]
            layer.values = layer.values[index, :, shared:]
        self.pads = [pad - shared for pad in self.pads]
        self.length -= shared

    def row_layers(self, index: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Row `index`'s own keys and values per layer, [1, kv_heads, real length, head_dim], copied out of the
        batch so that they do not keep the whole batch's tensors alive."""
        pad = self.pads[index]
        return [(layer.keys[index:index + 1, :, pad:].clone(), layer.values[index:index + 1, :, pad:].clone())
                for layer in self.cache.layers]

    def attention_mask(self, device) -> torch.Tensor | None:
        """[rows, length + 1] for the next decode step: 0 on padding. None when no row is padded."""
        if not any(self.pads):
            return None
        columns = torch.arange(self.length + 1, device=device)
        return (columns[None, :] >= torch.tensor(self.pads, device=device)[:, None]).long()


def _left_pad(tensor: torch.Tensor, width: int) -> torch.Tensor:
    # [rows, heads, length, dim] → [rows, heads, width, dim], zeros on the left
    missing = width - tensor.shape[2]
    return F.pad(tensor, (0, 0, missing, 0)) if missing else tensor
