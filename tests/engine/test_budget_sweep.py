"""`budget_sweep` (app.service.sweep, app.engine.thinking.sweep): one trace, a fork per budget, and each budget's
answer exactly the one a plain request with that budget gives, greedy and seeded."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
from engine_helpers import chat

from app.engine.events import Failed, Finished, TextDelta, ThinkingDelta
from app.engine.request import Sampling, ThinkingSettings
from app.engine.thinking.sweep import fork_position
from app.service.errors import InvalidRequestError
from app.service.sweep import run_sweep

GREEDY = Sampling(temperature=0)
SEEDED = Sampling(temperature=1.0, seed=11)


def drain(handle) -> list:
    events = []
    while not isinstance(events[-1] if events else None, (Finished, Failed)):
        event = handle.next_event(60)
        assert event is not None, "no event within 60 s"
        events.append(event)
    return events


def answer(events: list) -> tuple:
    """What a client sees of one answer: thinking, text, stop, output tokens, the thinking figures."""
    end = events[-1]
    assert isinstance(end, Finished), end
    return ("".join(e.text for e in events if isinstance(e, ThinkingDelta)),
            "".join(e.text for e in events if isinstance(e, TextDelta)), end.stop_reason, end.usage.output_tokens,
            {key: end.stats[key] for key in ("thinking_tokens", "budget_forced")})


def request(text: str, sampling: Sampling, max_new_tokens: int = 60):
    return chat(text, max_new_tokens=max_new_tokens, sampling=sampling, thinking=ThinkingSettings(budget_tokens=1))


def assert_sweep_matches_plain_requests(engine, generation, budgets, answer_tokens=None) -> list:
    swept = run_sweep(engine, generation, budgets, lambda handle: answer(drain(handle)), answer_tokens)
    for swept_answer in swept.answers:
        budget = swept_answer.budget_tokens
        plain = replace(generation, thinking=replace(generation.thinking, budget_tokens=budget),
                        max_new_tokens=generation.max_new_tokens if answer_tokens is None else min(
                            generation.max_new_tokens, budget + answer_tokens))
        assert swept_answer.result == answer(drain(engine.submit(plain))), swept_answer
    return swept.answers


@pytest.fixture
def default_engine(make_engine, default_model):
    return make_engine(loaded=default_model)


@pytest.fixture
def native_engine(make_engine, native_thinking_model, native_thinking_tokenizer):
    return make_engine(model=native_thinking_model, tokenizer=native_thinking_tokenizer)


@pytest.mark.parametrize("sampling", [GREEDY, SEEDED], ids=["greedy", "seeded"])
@pytest.mark.parametrize("which", ["prompted", "native"])
def test_every_budget_answers_as_its_own_request_would(which, sampling, engine, native_engine):
    """A random model never closes: each smaller budget forks where its own close starts."""
    served = native_engine if which == "native" else engine
    answers = assert_sweep_matches_plain_requests(served, request("Why is the sky blue?", sampling),
                                                  [0, 3, 12, 30, 45])
    # 0 cannot hold the closing marker: that request closes the section in its prompt, and runs on its own.
    assert [a.source for a in answers] == ["plain", "fork", "fork", "fork", "trace"]
    assert [a.result[4]["thinking_tokens"] for a in answers] == [0, 3, 12, 30, 45]


@pytest.mark.parametrize("sampling, text", [(GREEDY, "What is 17 * 23?"), (SEEDED, "Name three primes.")],
                         ids=["greedy", "seeded"])
def test_on_the_real_model_a_budget_the_model_never_reached_is_the_trace_itself(sampling, text, default_engine):
    """SmolLM2 closes its thinking by itself on these (within 16 to 64 tokens): a budget past that point would have
    done nothing, so its answer is the trace's, computed once; smaller ones fork."""
    answers = assert_sweep_matches_plain_requests(default_engine, request(text, sampling, 60), [3, 16, 64, 100])
    assert [a.source for a in answers] == ["fork", "fork", "same_as_trace", "trace"]


@pytest.mark.parametrize("sampling", [GREEDY, SEEDED], ids=["greedy", "seeded"])
def test_answers_with_a_length_of_their_own_match_requests_with_that_max_tokens(sampling, default_engine):
    """`answer_tokens`: each budget's request may generate its budget plus that many. One that would have closed
    as the trace did, but stops sooner than the trace, forks too."""
    answers = assert_sweep_matches_plain_requests(default_engine, request("Name three primes.", sampling, 200),
                                                  [8, 16, 32, 100], answer_tokens=2)
    assert all(a.result[3] <= a.budget_tokens + 2 for a in answers)
    # Greedy, the model closed its thinking itself after 7 tokens, in the trace and in a fork with less room.
    assert sampling is SEEDED or any(a.source == "fork" and not a.result[4]["budget_forced"] for a in answers)


def test_the_sweep_generates_less_than_one_request_per_budget(engine):
    swept = run_sweep(engine, request("Tell me a story.", GREEDY), [8, 16, 32, 48], lambda h: answer(drain(h)))
    forks = [a for a in swept.answers if a.source == "fork"]
    assert swept.separate_tokens == sum(a.result[3] for a in swept.answers)
    assert swept.generated_tokens == swept.separate_tokens - sum(a.forked_at for a in forks)
    assert swept.generated_tokens < swept.separate_tokens


def test_a_sweep_needs_thinking_and_no_minimum(engine):
    plain = chat("hi", max_new_tokens=8)
    with pytest.raises(InvalidRequestError, match="thinking enabled"):
        run_sweep(engine, plain, [4, 8], answer)
    with pytest.raises(InvalidRequestError, match="min_tokens"):
        run_sweep(engine, replace(plain, thinking=ThinkingSettings(budget_tokens=8, min_tokens=4)), [4, 8], answer)
    for bad in ([], [4, 4], [-1, 4]):
        with pytest.raises(InvalidRequestError, match="distinct budgets"):
            run_sweep(engine, request("hi", GREEDY), bad, answer)


def trace(free_until, how, close_at=40, closing=(1, 2)):
    return SimpleNamespace(free_until=free_until, first_intervention=how, close_at=close_at, closing_ids=closing)


@pytest.mark.parametrize("state, length, close_at, same_closing, expected", [
    ((None, None), 50, 20, False, 20),       # never closed (max_tokens): fork where the budget's close starts
    ((None, None), 50, 50, False, None),     # ... unless the trace ended first
    (("closed", 30), 60, 20, False, 20),     # closed by the model after that budget's close would start: fork
    (("closed", 30), 60, 30, False, None),   # closed by the model first (the request sees the close, too)
    (("stop", 30), 60, 31, False, None),     # tried to stop earlier: closed the same way (no transition)
    (("stop", 30), 60, 30, False, 30),       # at that step the budget forces its own closing instead
    (("budget", 40), 60, 40, True, None),    # the trace's own budget
    (("budget", 40), 60, 40, False, 40),     # the same step, another closing
    (("budget", 40), 60, 45, False, 40),     # a shorter closing starts later: the trace forced first
])
def test_where_a_budget_parts_from_the_trace(state, length, close_at, same_closing, expected):
    how, until = state
    assert fork_position(trace(until, how), length, close_at, same_closing) == expected


@pytest.mark.parametrize("state, max_new_tokens, expected", [
    (("closed", 30), 70, None),              # room for all the trace made: the trace is its answer
    (("closed", 30), 50, 30),                # less room: it closes where the trace did, and answers shorter
    (("closed", 30), 20, 19),                # no room to reach the close: parts at its own last token
    (("budget", 40), 30, 29),
])
def test_a_budget_whose_request_stops_sooner_than_the_trace_forks(state, max_new_tokens, expected):
    how, until = state
    assert fork_position(trace(until, how), 60, 40, False, max_new_tokens) == expected


def test_with_token_figures_each_answer_has_them_all_as_its_own_request_would(engine):
    """A fork carries the trace's figures for the tokens it resumed: every answer's figures cover all its tokens,
    equal to the plain request's."""
    generation = replace(request("Why is the sky blue?", GREEDY), logprobs=2)
    swept = run_sweep(engine, generation, [12, 30], lambda handle: drain(handle)[-1].stats["logprobs"])
    for swept_answer in swept.answers:
        plain = replace(generation, thinking=replace(generation.thinking, budget_tokens=swept_answer.budget_tokens))
        alone = drain(engine.submit(plain))[-1].stats["logprobs"]
        for part in ("thinking", "answer"):
            swept_tokens, alone_tokens = swept_answer.result[part]["tokens"], alone[part]["tokens"]
            assert [t["id"] for t in swept_tokens] == [t["id"] for t in alone_tokens]
            # The forks decode as a batch, the plain request alone: float32 sums may differ in the last digits.
            assert [t["logprob"] for t in swept_tokens] == pytest.approx([t["logprob"] for t in alone_tokens],
                                                                         abs=1e-3)
        assert len(alone["thinking"]["tokens"]) == swept_answer.budget_tokens
