"""The per-request LogitsProcessor that holds generation to a compiled tool grammar.

It is xgrammar's recipe (`xgr.contrib.hf.LogitsProcessor`: accept the token sampled last step, fill the next-token
bitmask, mask the logits) with what a serving path needs on top:

- it can start late: until activated it leaves the logits alone and shows the grammar nothing, so a thinking
  section is generated freely and the grammar begins right after `</think>`;
- the model's end-of-turn tokens are the grammar's stop tokens, so once the calls are complete the only thing
  the model may do is end its turn;
- logits wider than the tokenizer (lm_head padded to a multiple of 64/128) get their extra columns masked, as those
  ids are no tokens at all;
- the mask is applied only when it forbids something: free text in `auto` mode costs a bitmask fill (~2 µs) and
  nothing else;
- where the grammar allows exactly one continuation (`<tool_call>\n{"name": "`, the rest of a tool name, the next
  required key), the first token of that text's own tokenization is forced ("jump-forward", one token a step).
  Masking alone lets a model that never saw the syntax spell it in fragments: SmolLM2 wrote `<`,`t`,`oo`,`l`...
  and took 100 tokens for a 62-token call; forced literals are the tokens the model sees in its prompt, and fewer.

The step loop gives each request its own processor and calls it with that row alone; a batch works too (one matcher
per row, e.g. generate()'s num_return_sequences in the tests), with each row activated on its own by `start_after`,
or all at once by `activate()`.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import torch
import xgrammar as xgr
from transformers import LogitsProcessor

from ..errors import EngineError


class ToolGrammarViolation(EngineError):
    """A token outside the grammar was generated: something after this processor changed the choice."""


class ToolGrammarProcessor(LogitsProcessor):
    """Build it with `tools.grammar.make_tool_logits_processor`, fresh for every request."""

    def __init__(self, compiled: xgr.CompiledGrammar, vocab_size: int, end_of_turn_ids: Collection[int], *,
                 start_after: Callable[[torch.LongTensor], bool] | None = None, active: bool = True,
                 first_token: Callable[[str], int | None] | None = None):
        self._compiled = compiled
        self._first_token = first_token            # text → the first token of its tokenization (jump-forward)
        self._stop_tokens = sorted(end_of_turn_ids) or None     # None: the tokenizer's EOS
        self.vocab_size = vocab_size
        self._start_after = start_after
        self._activate_all = active
        self._prompt_length: int | None = None
        self._rows: list[_Row] = []                # one per sequence, made on the first call
        self._bitmask: torch.Tensor | None = None
        self.tokens_constrained = 0                # steps where the grammar masked something (row 0)
        self.tokens_forced = 0                     # ... of which the grammar's only continuation was forced
        self.taken_over = False                    # a drifted call was handed to another grammar (`take_over`)

    @property
    def active(self) -> bool:
        return self._activate_all or any(row.active for row in self._rows)

    def activate(self) -> None:
        """Start enforcing, in every sequence, with the next token to be generated. Idempotent."""
        self._activate_all = True
        for row in self._rows:
            row.active = True

    def take_over(self, compiled: xgr.CompiledGrammar, written: str) -> bool:
        """Hold the first sequence to `compiled` from the next token on, its text so far counted as `written`
        (drift recovery: a grammar that begins mid-answer, `written` being what its last token wrote past that
        point). False, changing nothing, where `written` does not fit the grammar."""
        matcher = xgr.GrammarMatcher(compiled, override_stop_tokens=self._stop_tokens)
        if not self._rows or (written and not matcher.accept_string(written)):
            return False
        row = self._rows[0]
        row.matcher, row.active, row.accepted_up_to = matcher, True, None
        self.taken_over = True
        return True

    @property
    def matcher(self) -> xgr.GrammarMatcher | None:
        """The first sequence's matcher (None before the first step): is_completed() says its calls are done."""
        return self._rows[0].matcher if self._rows else None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        # input_ids: [batch, length so far]; scores: [batch, logits width], the logits for the next token.
        batch, length = input_ids.shape
        if not self._rows:
            self._prompt_length = length
            self._rows = [_Row(xgr.GrammarMatcher(self._compiled, override_stop_tokens=self._stop_tokens),
                               self._activate_all) for _ in range(batch)]
            self._bitmask = xgr.allocate_token_bitmask(batch, self.vocab_size)
        masked_rows, forced = [], []
        for index, row in enumerate(self._rows):
            if not row.active:
                if self._start_after is None or not self._start_after(input_ids[index, self._prompt_length:]):
                    continue
                row.active = True
            if row.accepted_up_to is None:
                row.accepted_up_to = length        # the grammar starts at the token about to be generated
            row.accept(input_ids[index, row.accepted_up_to:length].tolist())
            row.accepted_up_to = length
            if not row.matcher.is_terminated() and row.matcher.fill_next_token_bitmask(self._bitmask, index):
                token = self._jump_forward_token(row.matcher, index)
                if token is None:
                    masked_rows.append(index)
                else:
                    forced.append((index, token))
                if index == 0:
                    self.tokens_constrained += 1
                    self.tokens_forced += token is not None
        if masked_rows:
            self._apply(scores, masked_rows)
        for index, token in forced:
            scores[index, :] = float("-inf")
            scores[index, token] = 0.0
        if scores.shape[-1] > self.vocab_size and any(row.active for row in self._rows):
            scores[:, self.vocab_size:] = float("-inf")
        return scores

    def _jump_forward_token(self, matcher: xgr.GrammarMatcher, index: int) -> int | None:
        if self._first_token is None:
            return None
        text = matcher.find_jump_forward_string()
        token = self._first_token(text) if text else None
        if token is None or token >= self.vocab_size:
            return None
        # Only a token the grammar allows (its own tokenization of the text always is; this guards odd tokenizers).
        word = int(self._bitmask[index, token // 32])
        return token if (word >> (token % 32)) & 1 else None

    def _apply(self, scores: torch.FloatTensor, rows: list[int]) -> None:
        width = min(scores.shape[-1], self.vocab_size)
        indices = None if len(rows) == scores.shape[0] else rows
        if scores.device.type in ("cpu", "cuda"):
            # xgrammar's CPU or CUDA kernel, on the first `width` columns.
            xgr.apply_token_bitmask_inplace(scores, self._bitmask.to(scores.device, non_blocking=True),
                                            vocab_size=width, indices=indices)
        else:
            # Other devices (mps, xpu): mask on CPU and copy back.
            on_cpu = scores.to("cpu")
            xgr.apply_token_bitmask_inplace(on_cpu, self._bitmask, vocab_size=width, indices=indices)
            scores.copy_(on_cpu)


class _Row:
    """One sequence's grammar state."""

    def __init__(self, matcher: xgr.GrammarMatcher, active: bool):
        self.matcher = matcher
        self.active = active
        self.accepted_up_to: int | None = None     # input_ids positions before this one were shown to the matcher

    def accept(self, tokens: list[int]) -> None:
        for token in tokens:
            if self.matcher.is_terminated():
                return                             # it ended its turn; what follows is padding
            if not self.matcher.accept_token(token):
                raise ToolGrammarViolation(
                    f"token {token} does not fit the tool grammar; a logits processor or stopping rule after the "
                    f"tool grammar must not change the sampled token")


def generated_ends_with(token_ids: Sequence[int]) -> Callable[[torch.LongTensor], bool]:
    """A `start_after` predicate: the generated tokens end with `token_ids` (e.g. the ids of `</think>` where it is
    one special token). Where the marker can be spelled in several tokenizations, have the thinking processor call
    `activate()` instead."""
    tail = torch.tensor(list(token_ids), dtype=torch.long)
    if tail.numel() == 0:
        raise ValueError("an empty marker would start the grammar at once; use active=True for that")

    def ended(generated: torch.LongTensor) -> bool:
        n = tail.numel()
        return generated.shape[0] >= n and bool(torch.equal(generated[-n:].cpu(), tail))

    return ended
