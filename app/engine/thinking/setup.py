"""What one request needs for thinking: the output parser's markers, the budget processor, the marker tokens the
streamer must show, and the research figures reported on `Finished.stats`.

It follows the prompt: the same `prompt_opens_thinking` that decided whether the rendered prompt ends inside an
open thinking section decides here whether the output starts as thinking.
"""
from __future__ import annotations

from ..model.loader import LoadedModel
from .parser import OutputParser
from ..model.profiles import ThinkingProfile
from ..request import Fork, GenerationRequest
from .budget import ThinkingBudgetProcessor, budget_closing, thinking_budget_processor
from .close import single_token_id
from .sweep import trace_forks


class RequestThinking:
    """Built per request; with thinking off it is inert (a plain parser, no processor, no stats).

    `opened`: the output starts inside the thinking section (the constraint plan's `thinking_first`, decided with
    the prompt by `prompt_opens_thinking`). A processor that must only act on the answer (the answer's grammar)
    starts once `answer_started` says so.
    """

    def __init__(self, loaded: LoadedModel, request: GenerationRequest, profile: ThinkingProfile,
                 prompt_length: int, *, opened: bool):
        self.settings = request.thinking
        self.profile = profile
        self._tokenizer = loaded.tokenizer
        self.budget: ThinkingBudgetProcessor | None = None
        self.opened = opened
        if self.opened:
            self.budget = thinking_budget_processor(loaded.tokenizer, profile, self.settings,
                                                    prompt_length=prompt_length,
                                                    end_of_turn_ids=loaded.end_of_turn_ids)
        markers = (profile.open_marker, profile.close_marker)
        ids = (single_token_id(loaded.tokenizer, marker) for marker in markers) if self.opened else ()
        # Native markers a tokenizer registers as special would be skipped when decoding; the parser needs them.
        self.shown_special_ids = frozenset(i for i in ids if i is not None)

    def answer_started(self, generated=None) -> bool:
        """Whether the thinking section is over, so the next token is the answer's: at once without one; with one,
        from the step in which the budget finds it closed (by the model, or by force). `generated` is unused: the
        signature of a grammar's `start_after`."""
        return self.budget is None or self.budget.closed

    def fork_closes(self, budgets: tuple[tuple[int, int], ...]) -> dict[int, tuple[int, tuple[int, ...], int]]:
        """Budget → (the step its forced close starts at, the closing ids, its max_new_tokens) for a sweep's other
        (budget, max_new_tokens), those whose closing fits (a budget that cannot hold it closes the section in the
        prompt: another request)."""
        if self.budget is None:
            return {}
        closes = {}
        for budget, max_new_tokens in budgets:
            closing = budget_closing(self._tokenizer, self.profile, self.settings, budget)
            if closing is not None:
                closes[budget] = (budget - closing.thinking_length, closing.token_ids, max_new_tokens)
        return closes

    def forks(self, closes: dict[int, tuple[int, tuple[int, ...], int]], generated: list[int],
              generator_states: dict, token_figures: list) -> dict[int, Fork | None]:
        """A finished trace's forks for the budgets of `closes` (`fork_closes`; see `sweep`); call after `stats`,
        which accounts for the last token."""
        return trace_forks(self.budget, generated, closes, generator_states, token_figures) if closes else {}

    def parser(self) -> OutputParser:
        if not self.opened:
            return OutputParser()        # thinking off, or closed in the prompt: every output is answer text
        return OutputParser(self.profile.open_marker, self.profile.close_marker, starts_in_thinking=True,
                            single_thinking_section=True)

    def processors(self) -> list:
        return [self.budget] if self.budget is not None else []

    def stats(self, generated_ids: list[int]) -> dict:
        """The figures for `Finished.stats` ({} with thinking off), once generation is over."""
        if self.settings is None:
            return {}
        effort = {"effort": self.settings.effort} if self.settings.effort is not None else {}
        if self.settings.prefill or self.settings.prefill_closed:
            effort["thinking_prefill"] = "closed" if self.settings.prefill_closed else "open"
        if self.budget is None:          # closed in the prompt: by the client, or no room for the closing marker
            return {"thinking_tokens": 0, "budget_tokens": self.settings.budget_tokens,
                    "budget_forced": not self.settings.prefill_closed, "min_tokens": self.settings.min_tokens,
                    "waits_inserted": 0, **effort}
        self.budget.finish(generated_ids)
        return {**self.budget.stats, **effort}
