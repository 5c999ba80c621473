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

The step loop gives each request its own processor and calls `constrain_into` with that row's line of the step's
`StepMask`: the matchers of all rows then fill one bitmask together and one kernel applies it. `__call__` does the
same for a batch (one matcher per row, e.g. generate()'s num_return_sequences in the tests), with each row activated
on its own by `start_after`, or all at once by `activate()`. The matcher follows the ids: tokens new since the last
call are accepted, and a shorter sequence than last time (a rejected draft) rolls the grammar back (`rollback`).
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import torch
import xgrammar as xgr
from transformers import LogitsProcessor

from ..errors import EngineError
from ..step_mask import StepMask


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
        row.matcher, row.active, row.started_at, row.accepted = matcher, True, None, 0
        self.taken_over = True
        return True

    @property
    def matcher(self) -> xgr.GrammarMatcher | None:
        """The first sequence's matcher (None before the first step): is_completed() says its calls are done."""
        return self._rows[0].matcher if self._rows else None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        # input_ids: [batch, length so far]; scores: [batch, logits width], the logits for the next token.
        mask = StepMask(input_ids.shape[0])
        for index in range(input_ids.shape[0]):
            self.constrain_into(mask, index, input_ids[index:index + 1], scores[index:index + 1], sequence=index)
        for error in mask.apply(scores).values():
            raise error
        return scores

    def constrain_into(self, mask: StepMask, at: int, input_ids: torch.LongTensor, scores: torch.FloatTensor, *,
                       sequence: int = 0) -> None:
        """Decide the next token's constraint for one sequence (`input_ids`: [1, length so far]) into line `at` of
        the step's `mask`. The tokens new since the last call are accepted first. `scores` is not read."""
        length = input_ids.shape[1]
        if not self._rows:
            self._prompt_length = length
        while len(self._rows) <= sequence:
            self._rows.append(self._new_row(self._activate_all))
        row = self._rows[sequence]
        if length < row.length:                              # shorter than the last call saw: rolled back
            self.rollback(row.length - length, sequence=sequence)
            row = self._rows[sequence]
        row.length = length + 1                              # with the token chosen from this call
        if not row.active:
            if self._start_after is None or not self._start_after(input_ids[0, self._prompt_length:]):
                return
            row.active = True
        if row.started_at is None:
            row.started_at = row.accepted_up_to = length     # the grammar starts at the token about to be generated
        row.accept(input_ids[0, row.accepted_up_to:length].tolist())
        row.accepted_up_to = length
        if scores.shape[-1] > self.vocab_size:
            mask.ban_padding(at, self.vocab_size)
        row.calls.append((length, 0, 0))
        if row.matcher.is_terminated():
            return

        def after_fill(restricts: bool) -> int | None:
            if not restricts:
                return None
            token = self._jump_forward_token(row.matcher, mask, at)
            row.calls[-1] = (length, 1, int(token is not None))
            return token

        mask.hold_to_grammar(at, row.matcher, self.vocab_size, after_fill)

    def rollback(self, count: int, *, sequence: int = 0) -> None:
        """The last `count` tokens of the sequence are gone (a draft rejected): the grammar, and the counters, are
        as they were when the sequence was that much shorter. A grammar rolled back past its start is inactive
        again, until whatever activated it does so again. A `take_over` is not undone."""
        if count <= 0 or sequence >= len(self._rows):
            return
        row = self._rows[sequence]
        length = row.length = max(self._prompt_length, row.length - count)
        while row.calls and row.calls[-1][0] >= length:
            row.calls.pop()
        if row.started_at is None:
            return
        if length < row.started_at:      # only a late start (activate, start_after) can be rolled back past
            self._rows[sequence] = self._new_row(False)
            self._rows[sequence].length = length
            self._activate_all = False
            return
        if row.accepted_up_to > length:
            kept = length - row.started_at
            if row.accepted > kept:              # tokens after the grammar ended were never shown to it
                row.matcher.rollback(row.accepted - kept)
                row.accepted = kept
            row.accepted_up_to = length

    @property
    def tokens_constrained(self) -> int:
        """Steps where the grammar masked something (first sequence)."""
        return sum(constrained for _, constrained, _ in self._rows[0].calls) if self._rows else 0

    @property
    def tokens_forced(self) -> int:
        """... of which the grammar's only continuation was forced."""
        return sum(forced for _, _, forced in self._rows[0].calls) if self._rows else 0

    def _new_row(self, active: bool) -> _Row:
        return _Row(xgr.GrammarMatcher(self._compiled, override_stop_tokens=self._stop_tokens), active)

    def _jump_forward_token(self, matcher: xgr.GrammarMatcher, mask: StepMask, at: int) -> int | None:
        if self._first_token is None:
            return None
        text = matcher.find_jump_forward_string()
        token = self._first_token(text) if text else None
        if token is None or token >= self.vocab_size:
            return None
        # Only a token the grammar allows (its own tokenization of the text always is; this guards odd tokenizers).
        return token if mask.allows(at, token) else None


class _Row:
    """One sequence's grammar state."""

    def __init__(self, matcher: xgr.GrammarMatcher, active: bool):
        self.matcher = matcher
        self.active = active
        self.started_at: int | None = None         # the input_ids position of the grammar's first token
        self.accepted_up_to: int | None = None     # input_ids positions before this one were shown to the matcher
        self.calls: list[tuple[int, int, int]] = []   # per call once active: (length, constrained, forced)
        self.length = 0                            # the sequence's length: the last call's, and the token it chose
        self.accepted = 0                          # tokens the matcher took (none once it has terminated)

    def accept(self, tokens: list[int]) -> None:
        for token in tokens:
            if self.matcher.is_terminated():
                return                             # it ended its turn; what follows is padding
            if self.matcher.accept_token(token):
                self.accepted += 1
            else:
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
