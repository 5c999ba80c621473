"""The KV pool: every layer's keys and values for every row, allocated once at start and never grown.

    keys[l], values[l]: [slots, kv_heads, slot_tokens + 1, head_dim]    (on layer l's device, in its KV dtype)

A slot holds one row's KV, position p in column p, up to the model's context window. Its last column (`scratch`)
is never read: a decode step padded to a fixed batch size (for a CUDA graph) writes its padding rows' KV there.
No step allocates or copies
in proportion to a context: a forward writes its new tokens' KV into the slots' next columns and attends over a
view of the pool. The decoding rows hold slots 0..n-1 (`slots.SlotTable` keeps them there), so one decode forward
reads `keys[l][:n, :, :longest]`, a view, with a mask hiding each row's columns past its own length.

`PoolView` is the `transformers.Cache` one forward sees: the model calls `update(k, v, layer)` in each attention
layer; the view writes them in place and returns the keys and values to attend over.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache


@dataclass(frozen=True)
class LayerShape:
    kv_heads: int
    head_dim: int
    device: torch.device
    dtype: torch.dtype

    def bytes_per_token(self) -> int:
        return 2 * self.kv_heads * self.head_dim * self.dtype.itemsize


def probe_layers(model, device: torch.device) -> list[LayerShape]:
    """Each attention layer's KV shape, device and dtype, read from a one-token forward into a DynamicCache (so
    models whose head sizes or devices differ by layer, and offloaded ones, are measured as they really run)."""
    cache = DynamicCache(config=model.config)
    one = torch.zeros((1, 1), dtype=torch.long, device=device)
    model(input_ids=one, position_ids=one, past_key_values=cache, use_cache=True)
    return [LayerShape(layer.keys.shape[1], layer.keys.shape[3], layer.keys.device, layer.keys.dtype)
            for layer in cache.layers]


class KVPool:
    def __init__(self, layers: list[LayerShape], slots: int, slot_tokens: int):
        self.slots = slots
        self.slot_tokens = slot_tokens
        self.scratch = slot_tokens                      # the column a padding row writes; no read reaches it
        # torch.empty: on a CPU, pages are only committed as tokens are written, so memory grows to the pool's size
        # with use and then stays there; on a GPU the whole pool is reserved at once.
        self.keys = [torch.empty((slots, s.kv_heads, slot_tokens + 1, s.head_dim), dtype=s.dtype,
                                 device=s.device) for s in layers]
        self.values = [torch.empty_like(k) for k in self.keys]
        self.nbytes = sum(k.numel() * k.element_size() * 2 for k in self.keys)

    def zero(self, slot: int, start: int, end: int) -> None:
        for tensors in (self.keys, self.values):
            for layer in tensors:
                layer[slot, :, start:end].zero_()

    def copy(self, source: int, target: int, length: int) -> None:
        """Slot `target`'s first `length` columns become slot `source`'s."""
        if length:
            for tensors in (self.keys, self.values):
                for layer in tensors:
                    layer[target, :, :length] = layer[source, :, :length]

    def swap(self, a: int, b: int, length_a: int, length_b: int) -> None:
        """Exchange two slots' contents (their first length_a / length_b columns)."""
        for tensors in (self.keys, self.values):
            for layer in tensors:
                held = layer[a, :, :length_a].clone()
                if length_b:
                    layer[a, :, :length_b] = layer[b, :, :length_b]
                if length_a:
                    layer[b, :, :length_a] = held


class PoolView(Cache):
    """The pool as one forward sees it: slots `first`.. `first + rows - 1`, row i writing its new tokens at columns
    `starts[i]`.., and every row reading columns 0..`read_length`-1 (the mask hides what a row must not see).
    In a decode step padded to a fixed batch size, a padding row's start is the pool's scratch column."""

    def __init__(self, pool: KVPool, first: int, starts: torch.Tensor | int, new_tokens: int, read_length: int):
        super().__init__(layers=[])
        self.pool = pool
        self.first = first
        self.starts = starts                 # an int (one row, a prefill chunk) or a [rows] tensor (decode)
        self.new_tokens = new_tokens
        self.read_length = read_length
        self._flat_columns: dict[tuple, torch.Tensor] = {}     # decode: where each row's token goes, per shape

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        # key_states, value_states: [rows, kv_heads, new_tokens, head_dim]
        keys, values = self.pool.keys[layer_idx], self.pool.values[layer_idx]
        rows = key_states.shape[0]
        if isinstance(self.starts, int):
            end = self.starts + self.new_tokens
            keys[self.first:self.first + rows, :, self.starts:end] = key_states
            values[self.first:self.first + rows, :, self.starts:end] = value_states
        else:                                # one new token per row, each at its own column: one index_copy_
            flat = self._columns(keys, rows)
            heads, dim = key_states.shape[1], key_states.shape[3]
            keys.view(-1, dim).index_copy_(0, flat, key_states.reshape(rows * heads, dim))
            values.view(-1, dim).index_copy_(0, flat, value_states.reshape(rows * heads, dim))
        window = slice(self.first, self.first + rows)
        return keys[window, :, :self.read_length], values[window, :, :self.read_length]

    def _columns(self, layer: torch.Tensor, rows: int) -> torch.Tensor:
        """[rows * kv_heads] indices into `layer` seen as [slots * kv_heads * slot_tokens, head_dim]: for row i,
        head h, the column starts[i] of slot first + i. The same for every layer of one shape: computed once."""
        _, heads, length, _ = layer.shape
        key = (heads, length, layer.device)
        if key not in self._flat_columns:
            slots = torch.arange(self.first, self.first + rows, device=layer.device)
            starts = self.starts.to(layer.device)
            rows_heads = slots[:, None] * heads + torch.arange(heads, device=layer.device)[None, :]
            self._flat_columns[key] = (rows_heads * length + starts[:, None]).reshape(-1)
        return self._flat_columns[key]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.read_length - self.new_tokens

    def get_mask_sizes(self, *args, **kwargs) -> tuple[int, int]:
        return self.read_length, 0

    @property
    def is_compileable(self) -> bool:
        return False
