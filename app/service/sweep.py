"""A budget sweep (`thinkserve.budget_sweep`, a research extension): the answers a request would get at several
thinking budgets, from one trace.

The trace thinks once, with the largest budget. The engine reports, for each smaller budget, where a request with
that budget would part from the trace (`Finished.forks`, worked out in `app.engine.thinking.sweep`); each fork is
then resumed from the trace's tokens (their KV from the prefix cache, which still holds the trace) and generates
only what differs: the forced close and the answer. Where the request would have generated the trace itself, the
trace is the answer. A budget too small for the closing marker closes the section in the prompt (a different
prompt): it runs as a plain request, beside the trace from the start. The answers are those plain requests
would give, token for token, greedy or seeded (in fp32; see the README on bf16). Sampled without a seed, each
fork's answer is still a draw from what its budget's request would give: the trace's prefix is a draw from the
same distribution, up to where they part.

Protocol-neutral: each answer's handle goes to the adapter's `collect`, which makes it a response of its shape.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from ..engine.events import Event, Failed, Finished
from ..engine.interface import Engine, GenerationHandle
from ..engine.request import GenerationRequest
from . import generation as service
from .errors import InvalidRequestError

T = TypeVar("T")
MAX_BUDGETS = 16


class RecordingHandle:
    """A handle that remembers its generation's last event (the trace's forks, each answer's figures)."""

    def __init__(self, handle: GenerationHandle):
        self._handle = handle
        self.end: Finished | Failed | None = None

    def next_event(self, timeout: float) -> Event | None:
        event = self._handle.next_event(timeout)
        if isinstance(event, (Finished, Failed)):
            self.end = event
        return event

    def cancel(self) -> None:
        self._handle.cancel()


@dataclass
class SweepAnswer(Generic[T]):
    budget_tokens: int
    source: str                      # "trace" | "fork" (resumed from the trace) | "same_as_trace" | "plain"
    result: T
    forked_at: int | None = None     # fork: how many of the trace's tokens it resumed from


@dataclass
class SweepResult(Generic[T]):
    answers: list[SweepAnswer[T]]    # in the order the request named the budgets
    generated_tokens: int            # what the sweep computed: the trace, the forks past their resumed tokens, the rest
    separate_tokens: int             # what one request per budget would have generated: every answer's output


def check_sweep(generation: GenerationRequest, budgets: list[int]) -> None:
    thinking = generation.thinking
    if thinking is None or thinking.prefill_closed:
        raise InvalidRequestError("thinkserve.budget_sweep: a sweep needs thinking enabled (and not closed by "
                                  "thinking.prefill_closed)", param="thinkserve.budget_sweep")
    if thinking.min_tokens:
        raise InvalidRequestError("thinkserve.budget_sweep does not combine with thinking.min_tokens: where s1's "
                                  "Wait goes depends on the budget, so the budgets share no trace",
                                  param="thinkserve.budget_sweep")
    if not 1 <= len(budgets) <= MAX_BUDGETS or len(set(budgets)) != len(budgets) or min(budgets) < 0:
        raise InvalidRequestError(f"thinkserve.budget_sweep: 1 to {MAX_BUDGETS} distinct budgets, each >= 0",
                                  param="thinkserve.budget_sweep")


def run_sweep(engine: Engine, generation: GenerationRequest, budgets: list[int],
              collect: Callable[[GenerationHandle], T], answer_tokens: int | None = None) -> SweepResult[T]:
    """Every budget's answer, each made by `collect` from its handle (which reads the events to the end).
    Raises ApiError as `service.start` does, and whatever `collect` raises.

    `answer_tokens`: each budget's request generates at most its budget plus this many tokens (and never more than
    the request's max_new_tokens), so every answer has the same room after its thinking; None: every budget's
    request has the request's max_new_tokens."""
    check_sweep(generation, budgets)

    def max_new(budget: int) -> int:
        if answer_tokens is None:
            return generation.max_new_tokens
        return min(generation.max_new_tokens, budget + answer_tokens)

    def at(budget: int, **fields) -> GenerationRequest:
        return replace(generation, thinking=replace(generation.thinking, budget_tokens=budget),
                       max_new_tokens=max_new(budget), **fields)

    largest = max(budgets)
    prepared = {budget: service.prepare(engine, at(budget)) for budget in budgets}     # each rendered once
    plain = [b for b in budgets if b != largest and prepared[b].ids != prepared[largest].ids]
    forkable = tuple((b, max_new(b)) for b in budgets if b != largest and b not in plain)
    handles: dict[int, RecordingHandle] = {}
    try:
        for budget in plain:                         # beside the trace: they share nothing with it
            handles[budget] = RecordingHandle(service.start(engine, at(budget), prepared=prepared[budget]).handle)
        trace = RecordingHandle(service.start(engine, at(largest, fork_budgets=forkable),
                                              prepared=prepared[largest]).handle)
        handles[largest] = trace
        results = {largest: collect(trace)}
        forks = trace.end.forks if isinstance(trace.end, Finished) else {}
        for budget, _ in forkable:
            if forks.get(budget) is not None:
                fork = at(budget, resume=forks[budget])            # the trace's prompt: forkable budgets share it
                handles[budget] = RecordingHandle(service.start(engine, fork, prepared=prepared[largest]).handle)
        for budget, handle in handles.items():
            if budget != largest:
                results[budget] = collect(handle)
    finally:
        for handle in handles.values():
            handle.cancel()                          # a no-op once finished; the rest stop if one failed
    answers, generated, separate = [], 0, 0
    for budget in budgets:
        fork = forks.get(budget)
        source = ("trace" if budget == largest else "plain" if budget in plain
                  else "fork" if fork is not None else "same_as_trace")
        answers.append(SweepAnswer(budget, source, results.get(budget, results[largest]),
                                   len(fork.generated) if fork is not None else None))
        output = _output_tokens(handles.get(budget, trace))
        separate += output
        if source != "same_as_trace":
            generated += output - (len(fork.generated) if fork is not None else 0)
    return SweepResult(answers, generated, separate)


def _output_tokens(handle: RecordingHandle) -> int:
    return handle.end.usage.output_tokens if isinstance(handle.end, Finished) else 0
