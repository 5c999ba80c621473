"""The thinking budget: a logits processor that keeps the thinking section within `budget_tokens`.

The same mechanism as vLLM, SGLang's strict mode and llama.cpp's reasoning budget: count the tokens generated
inside the thinking section and, when only the closing sequence still fits, force it token by token (every other
logit -inf) -- optionally Qwen3's transition phrase, then the closing marker, then the line break before the answer.
Forcing starts at `budget - (tokens of that sequence up to the marker)`, so the section, marker included, is never
longer than the budget. Two more rules make "thinking always closes before the answer" hold:

- end-of-turn is never allowed inside the thinking section; when it is the model's first choice, the closing
  marker is forced instead, without the transition phrase (the model had finished thinking: it answers now);
- s1's budget forcing (`min_tokens`): until that many thinking tokens exist, a close or end-of-turn as first choice
  is replaced by "Wait", and both are masked otherwise, so sampling cannot slip past either.

Once the section is closed, by the model or by force, `closed` is true from that call on (the answer's grammar,
after it in the row, starts in that same call, with the first token after the thinking), and the processor only
checks one attribute per token.

`min_tokens` is exact for native one-token markers; for a marker spelled in text it suppresses the spellings a
tokenizer gives it ("</", " </"), and a model that spells it another way ("<" "/") still closes (and is counted).

The prompt ends inside the open thinking section (see `prompt.render_prompt`), so every generated token is thinking
until the close. Built fresh for every request: it works on one row ([1, ...] ids and scores). The step loop calls
`constrain_into`, which writes its decision (a forced token, banned ids) into the step's shared `StepMask`;
`__call__` does the same for one row, for generate(). Its state follows the ids: a call with a shorter sequence than
the last (a rejected draft) restores the state from that point, as `rollback` does.
"""
from __future__ import annotations

from collections.abc import Collection
from enum import Enum

import torch
from transformers import LogitsProcessor

from ..model.profiles import ThinkingProfile
from ..request import ThinkingSettings
from ..step_mask import StepMask
from .close import (WAIT_CONTINUATION, CloseMarkerTokens, ClosingSequence, close_marker_tokens,
                             closing_sequence_within, wait_continuation_ids)


class Phase(Enum):
    THINKING = "thinking"            # the model chooses
    FORCING_WAIT = "forcing_wait"    # min_tokens: "Wait" replaces an early close
    FORCING_CLOSE = "forcing_close"  # the closing sequence, token by token
    ANSWER = "answer"                # closed: nothing more to do


class ThinkingBudgetProcessor(LogitsProcessor):
    """Per-request state machine THINKING → (FORCING_WAIT → THINKING)* → FORCING_CLOSE? → ANSWER.

    Args:
        tokenizer: decodes the last few tokens to see a plain-text closing marker.
        prompt_length: tokens in the prompt; `input_ids` beyond it are generated.
        budget_tokens: the most tokens the thinking section may hold, closing marker included.
        closing: the sequence forced when the budget runs out; its thinking part must fit in the budget.
        closing_on_stop: the sequence forced when the model tries to end its turn while thinking (default:
            `closing`); its thinking part must be no longer than `closing`'s.
        marker: how a close by the model is recognised.
        end_of_turn_ids: the ids that would end the turn.
        min_tokens: s1's minimum; capped so that a "Wait" still leaves room for the closing sequence.
        wait_ids: the continuation forced in place of an early close.

    Counters, read after generation (call `finish` first): thinking_tokens, budget_forced, waits_inserted,
    closed_naturally.
    """

    def __init__(self, tokenizer, *, prompt_length: int, budget_tokens: int, closing: ClosingSequence,
                 marker: CloseMarkerTokens, end_of_turn_ids: Collection[int], min_tokens: int = 0,
                 wait_ids: tuple[int, ...] = (), closing_on_stop: ClosingSequence | None = None):
        closing_on_stop = closing_on_stop or closing
        if closing.thinking_length > budget_tokens:
            raise ValueError(f"the closing sequence needs {closing.thinking_length} thinking tokens; the budget is "
                             f"{budget_tokens}")
        if closing_on_stop.thinking_length > closing.thinking_length:
            raise ValueError("closing_on_stop must not be longer than closing: it may start later")
        self._tokenizer = tokenizer
        self._prompt_length = prompt_length
        self.budget_tokens = budget_tokens
        self.min_tokens = min_tokens
        self._closing = closing
        self._closing_on_stop = closing_on_stop
        self._marker = marker
        self._close_at = budget_tokens - closing.thinking_length
        # A Wait started before this point ends, at the latest, exactly where the close has to start.
        self._effective_min = max(0, min(min_tokens, self._close_at - len(wait_ids) + 1)) if wait_ids else 0
        self._wait_ids = wait_ids
        self._end_of_turn = frozenset(end_of_turn_ids)
        self._stop_attempts = self._end_of_turn | marker.start_ids
        self._end_of_turn_list = sorted(self._end_of_turn)
        self._stop_attempt_list = sorted(self._stop_attempts)
        self._id_tensors: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._history: list[tuple] = []  # the state at the start of each call, by generated position: rollback

        self.phase = Phase.THINKING
        self._forcing: tuple[int, ...] = ()
        self._forced = 0                 # how many of self._forcing have been forced
        self.thinking_tokens = 0
        self.budget_forced = False
        self.waits_inserted = 0
        self.closed_naturally = False
        # The first call at which the processor did anything but let the model choose a thinking token (saw its
        # close, forced one, inserted a Wait), and what it did: where a budget sweep's forks part from the trace.
        self.free_until: int | None = None
        self.first_intervention: str | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = StepMask(1)
        self.constrain_into(mask, 0, input_ids, scores)
        mask.apply(scores)
        return scores

    def constrain_into(self, mask: StepMask, at: int, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> None:
        """Decide the next token's constraint (`input_ids`: [1, length so far]; `scores`: [1, vocab], read only)
        into line `at` of the step's `mask`. Called once per generated token, in order."""
        if input_ids.shape[0] != 1:
            raise ValueError("the thinking budget runs one sequence at a time")
        generated = input_ids.shape[1] - self._prompt_length
        if generated < len(self._history):          # the sequence is shorter than at the last call: rolled back
            self._restore(self._history[generated])
            del self._history[generated:]
        self._history.append(self._state())
        if self.phase is Phase.ANSWER:
            return
        if self.phase is not Phase.THINKING:                     # in the middle of a forced sequence
            if self._forced < len(self._forcing):
                return self._force_next(mask, at)
            if self.phase is Phase.FORCING_CLOSE:
                self.phase = Phase.ANSWER
                return
            self.phase = Phase.THINKING                           # the Wait is in: the model goes on thinking
        elif generated and self._model_closed(input_ids[0, -min(generated, self._marker.window):].tolist()):
            self.closed_naturally, self.thinking_tokens, self.phase = True, generated, Phase.ANSWER
            return self._intervened(generated, "closed")

        if generated >= self._close_at:
            self.budget_forced = True
            self._intervened(generated, "budget")
            return self._start_close(self._closing, generated, mask, at)
        end_of_turn_ids, stop_attempt_ids = self._ids_on(scores.device)
        if generated < self._effective_min:
            if _first_choice_among(scores, stop_attempt_ids):
                self.waits_inserted += 1
                self._intervened(generated, "wait")
                return self._start(Phase.FORCING_WAIT, self._wait_ids, mask, at)
            mask.ban(at, self._stop_attempt_list)
        elif _first_choice_among(scores, end_of_turn_ids):
            self._intervened(generated, "stop")
            return self._start_close(self._closing_on_stop, generated, mask, at)   # it wanted to stop: let it answer
        else:
            mask.ban(at, self._end_of_turn_list)

    def rollback(self, count: int) -> None:
        """The last `count` generated tokens are gone (a draft rejected; counted from the tokens the calls so far
        chose, one a call): the state is as it was at the call that chose the first of them."""
        if count <= 0 or not self._history:
            return
        position = max(0, len(self._history) - count)
        self._restore(self._history[position])
        del self._history[position:]

    def _state(self) -> tuple:
        return (self.phase, self._forcing, self._forced, self.thinking_tokens, self.budget_forced,
                self.waits_inserted, self.closed_naturally, self.free_until, self.first_intervention)

    def _restore(self, state: tuple) -> None:
        (self.phase, self._forcing, self._forced, self.thinking_tokens, self.budget_forced, self.waits_inserted,
         self.closed_naturally, self.free_until, self.first_intervention) = state

    def _intervened(self, generated: int, how: str) -> None:
        if self.free_until is None:
            self.free_until, self.first_intervention = generated, how

    def finish(self, generated_ids: list[int]) -> None:
        """Generation is over: account for its last token, which no call to the processor saw."""
        generated = len(generated_ids)
        if self.phase is Phase.FORCING_CLOSE:
            self.thinking_tokens = min(self.thinking_tokens, generated)   # cut short by max_new_tokens
            if self._forced >= len(self._forcing):
                self.phase = Phase.ANSWER
        elif self.phase is not Phase.ANSWER:
            if self.phase is Phase.THINKING and generated and self._model_closed(
                    generated_ids[-self._marker.window:]):
                self.closed_naturally, self.thinking_tokens = True, generated
                self.phase = Phase.ANSWER        # nothing follows
                self._intervened(generated, "closed")
            else:
                self.thinking_tokens = generated                   # it never closed (max_new_tokens, cancel)

    @property
    def stats(self) -> dict:
        return {"thinking_tokens": self.thinking_tokens, "budget_tokens": self.budget_tokens,
                "budget_forced": self.budget_forced, "min_tokens": self.min_tokens,
                "waits_inserted": self.waits_inserted}

    # -- helpers -----------------------------------------------------------------------------------------------

    def _model_closed(self, tail: list[int]) -> bool:
        if self._marker.single_id is not None:
            return tail[-1] == self._marker.single_id
        # A text marker can be split over tokens any way; decoding the last few sees it whole. Special tokens are
        # skipped as the streamer skips them, so this agrees with the output parser, which reads the streamed text.
        return self._marker.text in self._tokenizer.decode(tail, skip_special_tokens=True)

    @property
    def close_at(self) -> int:
        """The step at which the budget starts forcing its closing sequence (`closing_ids`)."""
        return self._close_at

    @property
    def closing_ids(self) -> tuple[int, ...]:
        return self._closing.token_ids

    @property
    def closed(self) -> bool:
        """The thinking section is over: the next token is the answer's."""
        return self.phase is Phase.ANSWER

    def _start_close(self, closing: ClosingSequence, generated: int, mask: StepMask, at: int) -> None:
        self.thinking_tokens = generated + closing.thinking_length
        self._start(Phase.FORCING_CLOSE, closing.token_ids, mask, at)

    def _start(self, phase: Phase, ids: tuple[int, ...], mask: StepMask, at: int) -> None:
        self.phase, self._forcing, self._forced = phase, ids, 0
        self._force_next(mask, at)

    def _force_next(self, mask: StepMask, at: int) -> None:
        mask.force(at, self._forcing[self._forced])
        self._forced += 1

    def _ids_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        ids = self._id_tensors.get(device)
        if ids is None:
            ids = self._id_tensors[device] = (
                torch.tensor(self._end_of_turn_list, dtype=torch.long, device=device),
                torch.tensor(self._stop_attempt_list, dtype=torch.long, device=device))
        return ids


def _first_choice_among(scores: torch.FloatTensor, ids: torch.Tensor) -> bool:
    """Whether the highest-scoring token is one of `ids` ([1, vocab] scores). A max over the row and one over a
    few ids, rather than argmax: on CPU, argmax over a 49k vocabulary costs ~110 µs, amax ~10 µs."""
    return ids.numel() > 0 and bool(scores[0, ids].max() >= scores[0].amax())


def thinking_budget_processor(tokenizer, profile: ThinkingProfile, settings: ThinkingSettings, *,
                              prompt_length: int, end_of_turn_ids: Collection[int],
                              continuation: str = WAIT_CONTINUATION) -> ThinkingBudgetProcessor | None:
    """The processor for one request, or None when the budget cannot even hold the closing marker (the prompt has
    then closed the section already: see `prompt.render_prompt`). The transition is the request's, else the
    profile's; it is left out when the budget is too small for it, and when the model itself tries to stop."""
    closing = budget_closing(tokenizer, profile, settings, settings.budget_tokens)
    if closing is None:
        return None
    return ThinkingBudgetProcessor(
        tokenizer, prompt_length=prompt_length, budget_tokens=settings.budget_tokens, closing=closing,
        closing_on_stop=closing_sequence_within(tokenizer, profile.close_marker, "", settings.budget_tokens),
        marker=close_marker_tokens(tokenizer, profile.close_marker), end_of_turn_ids=end_of_turn_ids,
        min_tokens=settings.min_tokens, wait_ids=wait_continuation_ids(tokenizer, continuation))


def budget_closing(tokenizer, profile: ThinkingProfile, settings: ThinkingSettings,
                   budget_tokens: int) -> ClosingSequence | None:
    """The sequence a budget of `budget_tokens` forces (the request's transition, else the profile's, when it
    fits), or None when not even the closing marker fits."""
    transition = settings.transition if settings.transition is not None else profile.transition
    return closing_sequence_within(tokenizer, profile.close_marker, transition, budget_tokens)
