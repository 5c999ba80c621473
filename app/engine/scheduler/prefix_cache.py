"""KV kept across requests, so a prompt that starts like an earlier one is not read again.

An entry is a token sequence and the keys and values the model computed for it, per layer
([1, kv_heads, length, head_dim]). The KV of position i depends only on tokens 0..i, so any prefix of an entry is
valid for any prompt that starts with that prefix: a lookup takes the entry with the longest common prefix and crops
it. Entries come from prompts (once prefilled: concurrent requests with a shared system prompt reuse it at once)
and from finished rows (prompt and answer: the next turn of a conversation or tool loop starts with them).

Bounded by bytes, least recently used out first. An entry that is a prefix of a newer one is dropped: the newer one
serves every lookup it could.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch

from .batch import cache_bytes


@dataclass
class PrefixEntry:
    ids: torch.Tensor                                   # [length] int64, on CPU
    layers: list[tuple[torch.Tensor, torch.Tensor]]     # per layer (keys, values): [1, kv_heads, length, head_dim]
    nbytes: int


class PrefixCache:
    def __init__(self, budget_bytes: int):
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[int, PrefixEntry] = OrderedDict()
        self._next_key = 0
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.tokens_reused = 0
        self._lock = threading.Lock()                   # stats() is read from HTTP threads

    def lookup(self, ids: list[int], limit: int) -> tuple[int, list[tuple[torch.Tensor, torch.Tensor]]]:
        """The longest cached prefix of `ids`, at most `limit` tokens: (length, per-layer views of its KV).
        (0, []) on a miss."""
        if not self._entries or limit <= 0:
            self.misses += 1
            return 0, []
        query = torch.tensor(ids[:limit], dtype=torch.long)
        best_key, best = None, 0
        for key, entry in self._entries.items():
            shared = _common_prefix(query, entry.ids)
            if shared > best:
                best_key, best = key, shared
        if best_key is None:
            self.misses += 1
            return 0, []
        with self._lock:
            self._entries.move_to_end(best_key)
            self.hits += 1
            self.tokens_reused += best
        entry = self._entries[best_key]
        return best, [(k[:, :, :best], v[:, :, :best]) for k, v in entry.layers]

    def insert(self, ids: list[int], layers: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Keep the KV of `ids` (len(ids) == each layer's length). Older entries it extends are dropped."""
        if not ids or self.budget_bytes <= 0:
            return
        entry = PrefixEntry(torch.tensor(ids, dtype=torch.long), layers, cache_bytes(layers))
        if entry.nbytes > self.budget_bytes:
            return
        with self._lock:
            for key, old in list(self._entries.items()):
                if len(old.ids) <= len(entry.ids) and _common_prefix(entry.ids, old.ids) == len(old.ids):
                    self._drop(key)                      # a prefix of the new entry: it serves nothing more
                elif len(old.ids) > len(entry.ids) and _common_prefix(old.ids, entry.ids) == len(entry.ids):
                    self._entries.move_to_end(key)       # the new one is a prefix of this one: keep that instead
                    return
            self._entries[self._next_key] = entry
            self._next_key += 1
            self.bytes += entry.nbytes
            while self.bytes > self.budget_bytes:
                self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0

    def stats(self) -> dict:
        with self._lock:
            return {"entries": len(self._entries), "tokens": sum(len(e.ids) for e in self._entries.values()),
                    "bytes": self.bytes, "budget_bytes": self.budget_bytes, "hits": self.hits,
                    "misses": self.misses, "tokens_reused": self.tokens_reused}

    def _drop(self, key: int) -> None:
        self.bytes -= self._entries.pop(key).nbytes


def _common_prefix(a: torch.Tensor, b: torch.Tensor) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differ = (a[:n] != b[:n]).nonzero()
    return int(differ[0]) if len(differ) else n
