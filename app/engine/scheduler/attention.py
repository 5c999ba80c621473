"""The attention the step loop runs: transformers' SDPA, without expanding grouped key/value heads.

transformers' own `sdpa` copies every key and value head `heads / kv_heads` times (`repeat_kv`) whenever a mask is
given, which the KV pool always gives: with 4 rows of 3,000 tokens that copy cost 3× the attention itself on a
CPU. Here a decode step (one query per row) groups the query heads onto their key/value head and reads the KV once,
straight from the pool's views; longer queries (prefill, or `generate()`) go to SDPA with `enable_gqa`.

Registered under its own name, with SDPA's mask function, so the same model also serves `generate()` exactly as
before (tests compare the engine with it).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "thinkserve_sdpa"


def grouped_sdpa(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                 attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                 is_causal: bool | None = None, **kwargs) -> tuple[torch.Tensor, None]:
    # query [rows, heads, q, dim]; key, value [rows, kv_heads, kv_length, dim]; mask [rows, 1, q, kv_length] or None
    rows, heads, length, dim = query.shape
    kv_heads = key.shape[1]
    if attention_mask is not None and attention_mask.dtype == torch.bool:
        attention_mask = torch.zeros_like(attention_mask, dtype=query.dtype).masked_fill_(~attention_mask,
                                                                                          float("-inf"))
    if length == 1:
        grouped = query.view(rows, kv_heads, heads // kv_heads, dim)                   # [rows, kv_heads, group, dim]
        scores = torch.matmul(grouped, key.transpose(-1, -2))                           # [rows, kv_heads, group, kv]
        scores.mul_(scaling if scaling is not None else dim ** -0.5)
        if attention_mask is not None:
            scores.add_(attention_mask)                                                 # [rows, 1, 1, kv] broadcast
        output = torch.matmul(scores.softmax(-1), value).view(rows, heads, 1, dim)
    else:
        causal = attention_mask is None and (is_causal if is_causal is not None else getattr(module, "is_causal",
                                                                                                 True))
        output = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=dropout,
                                                scale=scaling, is_causal=causal, enable_gqa=kv_heads != heads)
    return output.transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, grouped_sdpa)
AttentionMaskInterface.register(NAME, sdpa_mask)


def use_grouped_attention(model) -> None:
    """Switch `model` (and its sub-models) to this attention. Models that cannot switch keep their own."""
    model.set_attn_implementation(NAME)
