"""A runner for the step loop with no model: its "KV" is the list of token ids each slot holds, and its logits are a
fixed function of those ids. So the loop's bookkeeping (which slot a row holds, what was swapped or copied where,
which positions it feeds) is checked exactly: a row fed from the wrong slot, or from content that was never moved
there, gets other logits and other tokens than it gets alone."""
from __future__ import annotations

import threading

import torch

VOCAB = 49152
FIRST_TOKEN, TOKEN_SPAN = 1000, 2000      # the scripted tokens: ordinary words of SmolLM2's vocabulary


def next_token(ids: list[int]) -> int:
    """The scripted model's choice after `ids`."""
    mixed = 0
    for position, token in enumerate(ids):
        mixed = (mixed * 31 + token * (position + 7)) % 1_000_003
    return FIRST_TOKEN + mixed % TOKEN_SPAN


class ScriptedRunner:
    batchable = True

    def __init__(self, slots: int = 8, slot_tokens: int = 512, fail_decode_at: int | None = None):
        self.slots, self.slot_tokens = slots, slot_tokens
        self.content: list[list[int]] = [[] for _ in range(slots)]
        self.prefilled_tokens = 0
        self.decode_rows: list[int] = []           # rows in each decode forward
        self.copies = 0
        self.fail_decode_at = fail_decode_at       # the decode call (0-based) that raises, once
        self.warmed_on: str | None = None          # the thread warm_up ran on

    def _logits(self, ids: list[int]) -> torch.Tensor:
        logits = torch.zeros(VOCAB)
        logits[next_token(ids)] = 10.0
        return logits

    def _write(self, slot: int, start: int, ids: list[int]) -> list[int]:
        assert 0 <= slot < self.slots
        assert start <= len(self.content[slot]), f"slot {slot} holds {len(self.content[slot])} tokens, fed at {start}"
        assert start + len(ids) <= self.slot_tokens
        self.content[slot] = self.content[slot][:start] + list(ids)
        return self.content[slot]

    def warm_up(self) -> None:
        self.warmed_on = threading.current_thread().name

    def prefill(self, slot: int, ids: list[int], start: int, images=None) -> torch.Tensor:
        self.prefilled_tokens += len(ids)
        return self._logits(self._write(slot, start, ids))[None]

    def decode(self, tokens: list[int], positions: list[int]) -> torch.Tensor:
        if self.fail_decode_at == len(self.decode_rows):
            self.fail_decode_at = None
            raise RuntimeError("a scripted failure")
        self.decode_rows.append(len(tokens))
        return torch.stack([self._logits(self._write(slot, position, [token]))
                            for slot, (token, position) in enumerate(zip(tokens, positions))])

    def swap(self, a: int, b: int, length_a: int, length_b: int) -> None:
        assert length_a <= len(self.content[a]) and length_b <= len(self.content[b])
        # Only the valid columns move: a row that relied on anything else would read the wrong "KV".
        self.content[a], self.content[b] = self.content[b][:length_b], self.content[a][:length_a]

    def copy(self, source: int, target: int, length: int) -> None:
        assert length <= len(self.content[source])
        self.copies += 1
        self.content[target] = self.content[source][:length]

    def image_features(self, image_inputs):
        raise AssertionError("no images here")

    def release(self) -> None:
        self.content = []
