"""What a step's constraints ask of its `[rows, vocab]` logits, gathered row by row and applied to all rows at once.

Each row's processors (thinking budget, tool grammar) decide on their own row: force one token, ban a few ids, or
hold the row to a grammar. They write those decisions here instead of into the logits, and `apply` then changes the
logits in a fixed number of operations whatever the number of rows: the grammar matchers fill one shared bitmask
together (`xgr.BatchGrammarMatcher`), one kernel applies it to every masked row, one scatter bans ids, and forced
rows are set in two. On an accelerator that is a handful of launches a step instead of a few per row.

The same object serves one row through a processor's `__call__` (generate(), or a test), so both paths run the same
decisions.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import xgrammar as xgr

# A grammar row's decision, once its bitmask is filled: given whether the mask forbids anything, the one token to
# force (the grammar's only continuation) or None to apply the mask as it is.
AfterFill = Callable[[bool], "int | None"]


class StepMask:
    def __init__(self, rows: int):
        self.rows = rows
        self._forced: dict[int, int] = {}
        self._banned: dict[int, list[int]] = {}
        self._padded_from: dict[int, int] = {}          # row → first logits column that is no token at all
        self._grammars: dict[int, tuple[xgr.GrammarMatcher, int, AfterFill]] = {}
        self.bitmask: torch.Tensor | None = None

    # -- decisions, row by row ---------------------------------------------------------------------------------

    def force(self, index: int, token: int) -> None:
        """Row `index` takes `token`: every other logit -inf, its own 0 (not its logit, which an earlier decision
        may have banned: a row of -inf samples NaN)."""
        self._forced[index] = token

    def ban(self, index: int, ids: Iterable[int]) -> None:
        self._banned.setdefault(index, []).extend(ids)

    def ban_padding(self, index: int, vocab_size: int) -> None:
        """Logits wider than the tokenizer (lm_head padded to a multiple of 64/128): the extra columns are no ids."""
        self._padded_from[index] = vocab_size

    def hold_to_grammar(self, index: int, matcher: xgr.GrammarMatcher, vocab_size: int, after_fill: AfterFill) -> None:
        """Row `index` is held to `matcher`'s next-token mask, filled in `apply` together with the other rows'.
        `after_fill` then sees the filled mask (`self.bitmask[index]`) and may force a token instead."""
        self._grammars[index] = (matcher, vocab_size, after_fill)

    def drop(self, index: int) -> None:
        """Row `index` failed while deciding: nothing it asked for applies."""
        for decisions in (self._forced, self._banned, self._padded_from, self._grammars):
            decisions.pop(index, None)

    # -- all rows at once --------------------------------------------------------------------------------------

    def apply(self, logits: torch.Tensor) -> dict[int, Exception]:
        """Change `logits` ([rows, width]) in place as decided. Returns the rows whose `after_fill` raised, with
        their error: nothing else of theirs is applied."""
        failed = self._fill_grammars(logits) if self._grammars else {}
        if self._banned:
            rows = [index for index, ids in self._banned.items() for _ in ids]
            ids = [token for token_ids in self._banned.values() for token in token_ids]
            logits.index_put_((torch.tensor(rows, device=logits.device), torch.tensor(ids, device=logits.device)),
                              torch.tensor(float("-inf"), device=logits.device))
        for start in set(self._padded_from.values()):
            if start < logits.shape[-1]:
                rows = [index for index, first in self._padded_from.items() if first == start]
                logits[rows, start:] = float("-inf")
        if self._forced:
            rows = torch.tensor(list(self._forced), device=logits.device)
            logits[rows] = float("-inf")
            logits[rows, torch.tensor(list(self._forced.values()), device=logits.device)] = 0.0
        return failed

    def _fill_grammars(self, logits: torch.Tensor) -> dict[int, Exception]:
        vocab_size = max(size for _, size, _ in self._grammars.values())
        self.bitmask = xgr.allocate_token_bitmask(self.rows, vocab_size)
        indices = list(self._grammars)
        matchers = [matcher for matcher, _, _ in self._grammars.values()]
        if len(matchers) == 1:
            matchers[0].fill_next_token_bitmask(self.bitmask, indices[0])
        else:
            _batch_matcher().batch_fill_next_token_bitmask(matchers, self.bitmask, indices)
        restricts = _restricts(self.bitmask, indices, vocab_size)
        masked, failed = [], {}
        for index, (_, size, after_fill) in list(self._grammars.items()):
            if index in self._forced:
                continue                        # a forced token outranks the grammar (it never happens together)
            try:
                token = after_fill(restricts[index])
            except Exception as error:
                failed[index] = error
                self.drop(index)
                continue
            if token is not None:
                self._forced[index] = token
            elif restricts[index]:
                masked.append(index)
        if masked:
            width = min(logits.shape[-1], vocab_size)
            indices = None if len(masked) == logits.shape[0] else masked
            if logits.device.type in ("cpu", "cuda"):
                xgr.apply_token_bitmask_inplace(logits, self.bitmask.to(logits.device, non_blocking=True),
                                                vocab_size=width, indices=indices)
            else:                               # other devices (mps, xpu): mask on CPU and copy back
                on_cpu = logits.to("cpu")
                xgr.apply_token_bitmask_inplace(on_cpu, self.bitmask, vocab_size=width, indices=indices)
                logits.copy_(on_cpu)
        return failed

    def allows(self, index: int, token: int) -> bool:
        """Whether row `index`'s filled grammar mask allows `token`."""
        word = int(self.bitmask[index, token // 32])
        return bool((word >> (token % 32)) & 1)


def _restricts(bitmask: torch.Tensor, indices: list[int], vocab_size: int) -> dict[int, bool]:
    """Per filled row: whether its mask forbids any of the `vocab_size` ids (all-ones needs no applying)."""
    full_words, rest = divmod(vocab_size, 32)
    lines = bitmask[indices]
    forbids = (lines[:, :full_words] != -1).any(dim=1)
    if rest:
        tail = (1 << rest) - 1
        forbids |= (lines[:, full_words] & tail) != tail
    return dict(zip(indices, forbids.tolist()))


_BATCH_MATCHER: xgr.BatchGrammarMatcher | None = None


def _batch_matcher() -> xgr.BatchGrammarMatcher:
    # One for the process: it owns a thread pool. Two threads at most, so it never crowds out the model's threads.
    global _BATCH_MATCHER
    if _BATCH_MATCHER is None:
        _BATCH_MATCHER = xgr.BatchGrammarMatcher(max_threads=2)
    return _BATCH_MATCHER
