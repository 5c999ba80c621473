"""The step loop on the real default model (float32, CPU): batching and the prefix cache never change the output.

Greedy output for each request is the same whether it runs alone, with seven others submitted together, or joining
a batch that is already decoding; and the same whether its prompt came from the prefix cache or was read afresh.
The requests mix plain answers of different lengths, a thinking budget, a stop sequence and a forced tool call.
"""
from __future__ import annotations

import dataclasses

import pytest
from engine_helpers import chat, final
from tool_fixtures import WEATHER

from app.engine.events import Finished, ThinkingDelta, ToolCallStart
from app.engine.request import ThinkingSettings, ToolChoice

REQUESTS = [
    chat("Hi!", max_new_tokens=12),
    chat("What is the capital of France?", max_new_tokens=20),
    chat("Write a haiku about the sea. " * 3, max_new_tokens=16),
    chat("Explain photosynthesis in two sentences, for a child who likes plants and trees and flowers. "
         "Keep it simple and cheerful, and end with a question.", max_new_tokens=28),
    chat("Count from one to ten in words.", max_new_tokens=24, stop_sequences=("3.",)),
    chat("Is 17 a prime number? Think it through.", max_new_tokens=40, thinking=ThinkingSettings(budget_tokens=20)),
    chat("What's the weather in Paris?", max_new_tokens=40, tools=(WEATHER,),
         tool_choice=ToolChoice("any", disable_parallel=True)),
    chat("List three fruits. " + "Be brief and precise, and use plain words that anyone can read. " * 12,
         max_new_tokens=18),
]


def outputs(handles, first_events=None) -> list[list]:
    """Each request's events, with what differs by design left out: the usage's cache split (the output must not)
    and tool call ids (random)."""
    results = []
    for index, handle in enumerate(handles):
        events = ([first_events[index]] if first_events else []) + list(handle.events(timeout=300))
        last = final(events)
        assert isinstance(last, Finished), last
        usage = last.usage
        events = [dataclasses.replace(e, call_id="-") if isinstance(e, ToolCallStart) else e for e in events[:-1]]
        results.append(events + [dataclasses.replace(last, usage=(usage.prompt_tokens, usage.output_tokens))])
    return results


@pytest.fixture
def engine_on(make_engine, default_model):
    def make(**config):
        return make_engine(loaded=default_model, **config)
    return make


@pytest.fixture
def alone(engine_on) -> list[list]:
    engine = engine_on(no_prefix_cache=True)
    return [outputs([engine.submit(request)])[0] for request in REQUESTS]


def test_the_mix_exercises_every_path(alone):
    finals = [events[-1] for events in alone]
    assert {f.stop_reason.value for f in finals} >= {"length", "stop_sequence", "tool_call"}
    assert any(isinstance(e, ThinkingDelta) for e in alone[5]) and finals[5].stats["thinking_tokens"] <= 20
    assert any(isinstance(e, ToolCallStart) for e in alone[6])


def test_submitted_together_each_output_is_the_same_as_alone(engine_on, alone):
    engine = engine_on(no_prefix_cache=True)
    together = outputs([engine.submit(request) for request in REQUESTS])
    assert together == alone


def test_joining_a_running_batch_changes_no_output(engine_on, alone):
    engine = engine_on(no_prefix_cache=True, prefill_chunk=16)    # long prompts are read over several steps too
    handles, first_events = [], []
    for request in REQUESTS:
        handles.append(engine.submit(request))
        first_events.append(handles[-1].next_event(timeout=300))   # the earlier ones decode as the next arrives
    assert outputs(handles, first_events) == alone


def test_a_cached_prefix_changes_no_output_and_is_reported_as_read(engine_on, alone):
    engine = engine_on()
    first = outputs([engine.submit(request) for request in REQUESTS])
    handles = [engine.submit(request) for request in REQUESTS]
    again = outputs(handles)
    assert first == alone and again == alone
    stats = engine.stats()["prefix_cache"]
    assert stats["hits"] >= len(REQUESTS) and stats["tokens_reused"] > 0
