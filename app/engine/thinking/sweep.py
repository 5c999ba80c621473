"""Where a budget sweep's answers part from its trace (`thinkserve.budget_sweep`, a research extension).

A sweep thinks once, with the largest budget B (the trace), and answers each smaller budget b from a fork of it.
Until its forced close starts (at `close_at(b)`: b less the closing sequence's thinking tokens), a request with
budget b makes the same decisions as the trace at every step: let the model choose, banning only end-of-turn. So its
first tokens are the trace's, up to the first step where either one does something else: b forces its close, or
the trace met its first intervention (the model closed the section, tried to stop, or B forced a close). The fork
is the trace cut there; the row resumed from it makes that step's decision with budget b's own processor, so every
rule (a close seen in the text, the transition that fits, end-of-turn) applies exactly as in the plain request.

Where the plain request would have done exactly what the trace did (the model closed before b's close would start;
it tried to stop early enough that b closes the same way; b is B), there is no fork: the trace is b's answer. Unless
that request could generate fewer tokens than the trace did (a sweep whose answers have a length of their own): then
it forks where the trace's first intervention was, and makes it again, with its own max_new_tokens.

Only for budgets with no minimum (`min_tokens`): s1's Wait depends on where the close starts, so b's first steps
need not be the trace's.
"""
from __future__ import annotations

from ..request import Fork
from .budget import ThinkingBudgetProcessor


def fork_position(trace: ThinkingBudgetProcessor, trace_length: int, close_at: int, same_closing: bool,
                  max_new_tokens: int | None = None) -> int | None:
    """How many of the trace's tokens a request whose forced close starts at `close_at` shares before deciding
    otherwise; None when it would generate exactly the trace. `trace_length`: tokens the trace generated;
    `same_closing`: that request would force the trace's own closing sequence at the same step; `max_new_tokens`:
    that request's (None: the trace's)."""
    until = trace.free_until if trace.free_until is not None else trace_length
    position = _parting(trace, trace_length, close_at, same_closing, until)
    if max_new_tokens is not None and max_new_tokens < trace_length:
        # It stops sooner than the trace did: it parts no later than its last token (any earlier point is as
        # good: from there the fork decides as that request would), making the trace's decision there again.
        position = max(0, min(until if position is None else position, max_new_tokens - 1))
    return position


def _parting(trace: ThinkingBudgetProcessor, trace_length: int, close_at: int, same_closing: bool,
             until: int) -> int | None:
    how = trace.first_intervention
    if how is None and close_at >= trace_length:
        return None                    # the trace ended (max_tokens) before that budget would have closed
    if how == "closed" and until <= close_at:
        return None                    # the model closed first: that budget never acted
    if how == "stop" and until < close_at:
        return None                    # it tried to stop first: closed without transition, as the trace was
    if how == "budget" and until == close_at and same_closing:
        return None
    return min(close_at, until)


def trace_forks(trace: ThinkingBudgetProcessor, generated: list[int],
                closes: dict[int, tuple[int, tuple[int, ...], int]], generator_states: dict[int, bytes | None],
                token_figures: list) -> dict[int, Fork | None]:
    """Each budget's fork from a finished trace. `closes`: budget → (close_at, closing ids, max_new_tokens), for
    the budgets whose closing fits (the others are closed in the prompt: a different request); `generator_states`:
    the seeded generator's state before each position's draw, at the positions a fork may start (absent: greedy,
    or no draw made yet)."""
    trace_close = (trace.close_at, trace.closing_ids)
    forks: dict[int, Fork | None] = {}
    for budget, (close_at, closing_ids, max_new_tokens) in closes.items():
        position = fork_position(trace, len(generated), close_at, (close_at, closing_ids) == trace_close,
                                 max_new_tokens)
        forks[budget] = None if position is None else Fork(
            tuple(generated[:position]), generator_states.get(position), tuple(token_figures[:position]))
    return forks
