"""Which row holds which slot of the KV pool, and what the idle slots still hold (the prefix cache).

The decoding rows hold slots 0..decoding-1, in the order of the decode batch, so one forward reads them as one view
of the pool. Rows still reading their prompt, and idle slots, sit above. Moving a row is a swap of two slots'
contents (`mover.swap`): when a prompt is in and its row joins the decode batch, and when a decoding row ends and
the last one takes its place. Both happen once per request, never per step.

A slot a row has left keeps its KV and the tokens it was computed for (the prompt's cache key, then the generated
tokens fed), so a later prompt that starts the same way reads only the rest. The KV of position i depends only on
tokens 0..i, so any prefix of a slot's content is valid for any prompt that starts with it. A new row takes:
  - the idle slot with the longest common prefix, when that prefix is all it holds: nothing is copied;
  - or, when a running row holds the longest prefix (a shared system prompt, in requests that arrive together),
    or an idle slot holds more than the prefix (an entry worth keeping), a free slot into which the prefix is
    copied;
  - or the idle slot used least recently (an empty one first), its content forgotten.
With sharing off (and for models read one row at a time), a left slot forgets its content at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch


class SlotMover(Protocol):
    def swap(self, a: int, b: int, length_a: int, length_b: int) -> None: ...
    def copy(self, source: int, target: int, length: int) -> None: ...


class SlotOwner(Protocol):
    fed: int                                          # tokens whose KV this row's slot holds
    def fed_cache_key(self) -> list[int]: ...         # the tokens those are, as the prefix cache keys them


@dataclass
class Slot:
    owner: SlotOwner | None = None
    key: list[int] = field(default_factory=list)       # idle: the tokens whose KV the slot still holds
    last_used: int = 0

    @property
    def length(self) -> int:
        return self.owner.fed if self.owner is not None else len(self.key)

    def content(self) -> list[int]:
        return self.owner.fed_cache_key() if self.owner is not None else self.key


class SlotTable:
    def __init__(self, count: int, mover: SlotMover, share_prefixes: bool):
        self.slots = [Slot() for _ in range(count)]
        self.mover = mover
        self.share_prefixes = share_prefixes
        self.decoding = 0                 # slots 0..decoding-1 hold the decode batch, in its order
        self._clock = 0
        self.hits = 0
        self.misses = 0
        self.tokens_reused = 0

    # -- reading --------------------------------------------------------------------------------------------

    def free(self) -> int:
        return sum(slot.owner is None for slot in self.slots)

    def decoding_rows(self) -> list:
        return [self.slots[i].owner for i in range(self.decoding)]

    def index_of(self, owner: SlotOwner) -> int:
        for index, slot in enumerate(self.slots):
            if slot.owner is owner:
                return index
        raise KeyError("this row holds no slot")

    def stats(self) -> dict:
        idle = [slot for slot in self.slots if slot.owner is None and slot.key]
        return {"enabled": self.share_prefixes, "slots": len(self.slots), "entries": len(idle),
                "tokens": sum(len(slot.key) for slot in idle), "hits": self.hits, "misses": self.misses,
                "tokens_reused": self.tokens_reused}

    # -- a row's life -----------------------------------------------------------------------------------------

    def claim(self, owner: SlotOwner, key: list[int], limit: int) -> tuple[int, int]:
        """Give `owner` a free slot, holding the longest prefix of `key` (at most `limit` tokens) found in any slot.
        Returns (slot, tokens of `key` whose KV it already holds). Call only when `free()` is not 0."""
        free = [i for i, slot in enumerate(self.slots) if slot.owner is None and i >= self.decoding]
        best, reused = self._longest_prefix(key, limit)
        if best is not None and self.slots[best].owner is None and reused == len(self.slots[best].key):
            target = best                       # all it holds is the new row's prefix: take it as it is
        else:
            target = min(free, key=lambda i: (bool(self.slots[i].key), self.slots[i].last_used))
            if best is not None and best != target:
                self.mover.copy(best, target, reused)       # a running row's prefix, or part of a longer entry
        if reused:
            self.hits += 1
            self.tokens_reused += reused
        else:
            self.misses += 1
        slot = self.slots[target]
        slot.owner, slot.key = owner, []
        return target, reused

    def join_decoding(self, owner: SlotOwner) -> None:
        """`owner`, whose prompt is in, becomes the last row of the decode batch."""
        self._swap(self.index_of(owner), self.decoding)
        self.decoding += 1

    def leave_decoding(self, indices: set[int], keep: set[int] = frozenset()) -> None:
        """The decode batch's rows at `indices` leave it: the last rows take their places. Those in `keep` leave
        their KV as a prefix cache entry; the others' is forgotten (a failed forward may have left it half
        written)."""
        for index in sorted(indices, reverse=True):
            owner = self.slots[index].owner
            self._swap(index, self.decoding - 1)
            self.decoding -= 1
            self.release(owner, keep=index in keep)

    def release(self, owner: SlotOwner, keep: bool = True) -> None:
        """A row that is not decoding (still reading its prompt, or out of the batch already) lets its slot go."""
        slot = self.slots[self.index_of(owner)]
        slot.key = owner.fed_cache_key() if keep and self.share_prefixes else []
        slot.owner = None
        self._clock += 1
        slot.last_used = self._clock

    def reset(self) -> None:
        """Every slot free and empty (after a failure that may have left any KV half written)."""
        self.slots = [Slot() for _ in self.slots]
        self.decoding = 0

    # -- helpers -------------------------------------------------------------------------------------------------

    def _swap(self, a: int, b: int) -> None:
        if a == b:
            return
        first, second = self.slots[a], self.slots[b]
        self.mover.swap(a, b, first.length, second.length)
        self.slots[a], self.slots[b] = second, first

    def _longest_prefix(self, key: list[int], limit: int) -> tuple[int | None, int]:
        if not self.share_prefixes or limit <= 0:
            return None, 0
        query = torch.tensor(key[:limit], dtype=torch.long)
        best, reused = None, 0
        for index, slot in enumerate(self.slots):
            if slot.length >= max(reused, 1):
                shared = _common_prefix(query, slot.content())
                # At equal length an idle slot wins: it is taken as it is, where a running row's must be copied.
                if shared > reused or (shared == reused > 0 and slot.owner is None):
                    best, reused = index, shared
        return best, reused


def _common_prefix(query: torch.Tensor, other: list[int]) -> int:
    n = min(len(query), len(other))
    if n == 0:
        return 0
    differ = (query[:n] != torch.tensor(other[:n], dtype=torch.long)).nonzero()
    return int(differ[0]) if len(differ) else n
