"""The engine end to end on a tiny random Llama with the real SmolLM2 tokenizer: events, usage, stop reasons,
stop sequences, cancellation, the bounded queue, failure isolation, and many requests at once."""
from __future__ import annotations


import pytest
import torch
from engine_helpers import build_tiny_llama_preferring, chat, final, text_of

from app.engine.errors import PromptTooLongError, QueueFullError
from app.engine.events import Failed, Finished, StopReason, TextDelta
from app.engine.request import Sampling

LONG = 4000        # tokens: ~10 s on the tiny model, far longer than any test waits


def reference_greedy(model, tokenizer, engine, request) -> list[int]:
    """What plain model.generate() produces for the same prompt, without the engine."""
    ids = tokenizer(engine.render_prompt(request), add_special_tokens=False, return_tensors="pt")["input_ids"]
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=request.max_new_tokens,
                         do_sample=False)
    return out[0, ids.shape[1]:].tolist()


def test_events_stream_in_order_and_end_with_finished(engine):
    events = list(engine.submit(chat(max_new_tokens=12)).events())
    assert all(isinstance(event, TextDelta) and event.text for event in events[:-1])
    assert isinstance(events[-1], Finished)
    assert events[-1].stop_reason is StopReason.LENGTH
    assert events[-1].usage.output_tokens == 12


def test_output_matches_plain_generate_and_counts_every_generated_token(engine, tiny_model, smollm_tokenizer):
    request = chat("Greedy, please.", max_new_tokens=25)
    expected = reference_greedy(tiny_model, smollm_tokenizer, engine, request)
    events = list(engine.submit(request).events())
    assert text_of(events) == smollm_tokenizer.decode(expected, skip_special_tokens=True)
    assert final(events).usage.output_tokens == len(expected) == 25


def test_greedy_is_deterministic_and_the_second_run_reads_its_prompt_from_the_cache(engine):
    runs = [list(engine.submit(chat("Same again", max_new_tokens=20)).events()) for _ in range(2)]
    assert runs[0][:-1] == runs[1][:-1]
    first, second = final(runs[0]).usage, final(runs[1]).usage
    assert first.cached_prompt_tokens == 0 and first.computed_prompt_tokens == first.prompt_tokens
    # Everything but the last prompt token, which is always fed again: its logits choose the first output token.
    assert second.cached_prompt_tokens == second.prompt_tokens - 1 and second.computed_prompt_tokens == 1


def test_sampling_runs_with_top_p_and_top_k(engine):
    request = chat(max_new_tokens=10, sampling=Sampling(temperature=0.8, top_p=0.9, top_k=20))
    assert final(list(engine.submit(request).events())).usage.output_tokens == 10


def test_a_seeded_request_samples_the_same_tokens_alone_or_batched(engine):
    """Sampling with a seed draws from the request's own generator: the same seed, the same tokens, whatever runs
    beside it; another seed, other tokens."""
    def seeded(seed):
        return chat(max_new_tokens=24, sampling=Sampling(temperature=1.0, top_k=200, seed=seed))

    alone = text_of(list(engine.submit(seeded(7)).events()))
    handles = [engine.submit(chat(max_new_tokens=24, sampling=Sampling(temperature=1.0))) for _ in range(2)]
    handles.insert(1, engine.submit(seeded(7)))
    handles.append(engine.submit(seeded(8)))
    texts = [text_of(list(handle.events())) for handle in handles]
    assert texts[1] == alone and texts[3] != alone


def test_max_new_tokens_zero_generates_nothing(engine):
    events = list(engine.submit(chat(max_new_tokens=0)).events())
    assert events == [Finished(StopReason.LENGTH, events[0].usage)] and events[0].usage.output_tokens == 0


def test_end_of_turn_token_ends_with_end_and_is_counted(make_engine, smollm_tokenizer):
    # A head that always prefers <|im_end|>: the model answers with the end-of-turn token at once.
    model = build_tiny_llama_preferring(smollm_tokenizer, smollm_tokenizer.eos_token_id)
    events = list(make_engine(model=model).submit(chat(max_new_tokens=50)).events())
    assert events == [Finished(StopReason.END, events[-1].usage)]
    assert events[-1].usage.output_tokens == 1


def test_stop_sequence_split_across_tokens_stops_generation_on_that_token(engine, smollm_tokenizer):
    free = list(engine.submit(chat("Stop me", max_new_tokens=30)).events())
    pieces = [event.text for event in free if isinstance(event, TextDelta)]
    # A stop string that straddles the boundary between the 8th and 9th token's text.
    boundary = sum(len(piece) for piece in pieces[:8])
    full = text_of(free)
    stop = full[boundary - 2:boundary + 2]
    before = full[:full.find(stop)]

    events = list(engine.submit(chat("Stop me", max_new_tokens=30, stop_sequences=("never-there", stop))).events())
    finished = final(events)
    assert finished.stop_reason is StopReason.STOP_SEQUENCE and finished.stop_sequence == stop
    assert text_of(events) == before and stop not in text_of(events)
    # Generation ended on the very token that completed the stop sequence: no token was wasted after it.
    generated = smollm_tokenizer(full, add_special_tokens=False)["input_ids"]
    completing = next(n for n in range(1, len(generated) + 1)
                      if stop in smollm_tokenizer.decode(generated[:n], skip_special_tokens=True))
    assert finished.usage.output_tokens == completing < 30


def test_cancel_stops_a_long_generation_within_a_step_and_the_next_job_runs(engine):
    handle = engine.submit(chat(max_new_tokens=LONG))
    assert isinstance(handle.next_event(timeout=30), TextDelta)
    generated_at_cancel = handle.generated_tokens
    handle.cancel()
    handle.cancel()                                  # twice is fine
    finished = final(list(handle.events(timeout=30)))
    # The loop may finish the step it was in when the flag was set; the next one retires the row.
    assert finished.stop_reason is StopReason.CANCELLED
    assert finished.usage.output_tokens <= generated_at_cancel + 2
    assert final(list(engine.submit(chat(max_new_tokens=5)).events())).stop_reason is StopReason.LENGTH


def test_full_queue_refuses_at_once_and_a_cancelled_waiting_job_is_skipped(make_engine):
    engine = make_engine(max_queue=1, max_batch_size=1)
    running = engine.submit(chat(max_new_tokens=LONG))
    assert running.next_event(timeout=30) is not None          # it has left the queue: the model is busy
    waiting = engine.submit(chat(max_new_tokens=LONG))        # takes the one waiting slot
    with pytest.raises(QueueFullError):
        engine.submit(chat())                                  # refused at once: submit never waits for room

    waiting.cancel()
    running.cancel()
    assert final(list(running.events(timeout=10))).stop_reason is StopReason.CANCELLED
    skipped = list(waiting.events(timeout=10))
    assert skipped == [Finished(StopReason.CANCELLED, skipped[0].usage)] and skipped[0].usage.output_tokens == 0


def test_an_exception_in_the_model_fails_that_job_only(engine, tiny_model, monkeypatch):
    real_forward = tiny_model.forward
    calls = []

    def forward_once_broken(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory (simulated)")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(tiny_model, "forward", forward_once_broken)
    failed = list(engine.submit(chat(max_new_tokens=5)).events())
    assert len(failed) == 1 and isinstance(failed[0], Failed) and "out of memory" in failed[0].message
    assert final(list(engine.submit(chat(max_new_tokens=5)).events())).usage.output_tokens == 5


def test_a_prompt_that_fills_the_context_window_is_refused(engine):
    with pytest.raises(PromptTooLongError):
        engine.submit(chat("word " * 9000))


def test_close_ends_waiting_jobs_and_refuses_new_ones(make_engine):
    engine = make_engine(max_queue=2, max_batch_size=1)
    running = engine.submit(chat(max_new_tokens=LONG))
    assert running.next_event(timeout=30) is not None
    waiting = engine.submit(chat())
    engine.close()
    assert final(list(running.events(timeout=10))).stop_reason is StopReason.CANCELLED
    assert isinstance(final(list(waiting.events(timeout=10))), Failed)
    with pytest.raises(Exception, match="closed"):
        engine.submit(chat())


def test_output_is_bounded_by_the_room_left_in_the_context_window(make_engine):
    engine = make_engine()
    prompt_tokens = engine.count_prompt_tokens(chat())
    small = make_engine(context_window=prompt_tokens + 3)
    finished = final(list(small.submit(chat(max_new_tokens=50)).events()))
    # The window, not max_new_tokens, ended it: Anthropic's model_context_window_exceeded.
    assert finished.stop_reason is StopReason.CONTEXT_WINDOW and finished.usage.output_tokens == 3
    exactly = final(list(small.submit(chat(max_new_tokens=3)).events()))
    assert exactly.stop_reason is StopReason.LENGTH and exactly.usage.output_tokens == 3


def test_capacity_is_max_batch_size_running_plus_max_queue_waiting_however_fast_they_arrive(make_engine):
    engine = make_engine(max_queue=1, max_batch_size=1)
    # Back to back, before the loop has even picked up the first: it will run, the second waits.
    first, second = engine.submit(chat(max_new_tokens=LONG)), engine.submit(chat(max_new_tokens=3))
    with pytest.raises(QueueFullError):
        engine.submit(chat())
    first.cancel()
    assert final(list(second.events(timeout=30))).usage.output_tokens == 3
    none_waiting = make_engine(max_queue=0, max_batch_size=1)
    running = none_waiting.submit(chat(max_new_tokens=LONG))
    with pytest.raises(QueueFullError):
        none_waiting.submit(chat())
    running.cancel()


def test_a_cancelled_waiting_job_gives_up_its_place_in_the_queue(make_engine):
    engine = make_engine(max_queue=1, max_batch_size=1)
    running = engine.submit(chat(max_new_tokens=LONG))
    assert running.next_event(timeout=30) is not None
    abandoned = engine.submit(chat(max_new_tokens=LONG))
    abandoned.cancel()                                          # its client went away while it waited
    replacement = engine.submit(chat(max_new_tokens=3))        # the queue has room again
    assert final(list(abandoned.events(timeout=5))).stop_reason is StopReason.CANCELLED
    running.cancel()
    assert final(list(replacement.events(timeout=30))).usage.output_tokens == 3


def test_thirty_two_requests_at_once_all_finish_batched(make_engine):
    engine = make_engine(max_batch_size=8)
    handles = [engine.submit(chat(f"Request {i}", max_new_tokens=6)) for i in range(32)]
    finals = [final(list(handle.events(timeout=120))) for handle in handles]
    assert all(f.stop_reason is StopReason.LENGTH and f.usage.output_tokens == 6 for f in finals)
    stats = engine.stats()
    assert stats["finished"] == 32 and stats["running"] == stats["waiting"] == 0
    # Fewer steps than tokens: rows were decoded together (one request at a time would take 32 x 6 steps).
    assert stats["steps"] < 32 * 6 / 2


def test_one_token_choice_serves_greedy_and_sampled_rows_together():
    from types import SimpleNamespace

    from app.engine.scheduler.choice import choose_tokens

    def rows(*samplings):
        return [SimpleNamespace(processors=[], sampling=sampling) for sampling in samplings]

    line = [0.1, 2.0, 1.9, -1.0]
    assert choose_tokens(rows(Sampling(temperature=0)), torch.tensor([line])) == [1]
    mixed = rows(Sampling(temperature=0), Sampling(temperature=1.0, top_k=1), Sampling(temperature=1.0, top_p=0.99))
    draws = [choose_tokens(mixed, torch.tensor([line, line[::-1], line])) for _ in range(200)]
    assert {d[0] for d in draws} == {1} and {d[1] for d in draws} == {2}      # argmax; top_k 1 of the reversed line
    assert {1, 2} <= {d[2] for d in draws} <= {0, 1, 2, 3}


def test_background_jobs_leave_the_last_row_free_and_never_fill_the_queue(make_engine):
    engine = make_engine(max_batch_size=2, max_queue=0)
    background = [engine.submit(chat(max_new_tokens=LONG, background=True)) for _ in range(3)]
    assert background[0].next_event(timeout=30) is not None
    # No waiting place at all (max_queue 0), and yet there is room: background jobs are not counted against it.
    interactive = engine.submit(chat(max_new_tokens=3))
    assert final(list(interactive.events(timeout=30))).usage.output_tokens == 3
    # One background row ran beside it; the other two waited, leaving the last row to interactive work.
    assert engine.stats()["background_waiting"] == 2
    for handle in background:
        handle.cancel()
    assert all(final(list(handle.events(timeout=30))).stop_reason is StopReason.CANCELLED for handle in background)


def test_an_unexpected_error_in_a_step_fails_the_running_jobs_and_the_loop_goes_on(engine, monkeypatch):
    from app.engine.scheduler.row import Row
    real_finish = Row.finish
    calls = []

    def finish_once_broken(self):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug in the bookkeeping")
        return real_finish(self)

    monkeypatch.setattr(Row, "finish", finish_once_broken)
    failed = list(engine.submit(chat(max_new_tokens=3)).events(timeout=30))
    assert isinstance(failed[-1], Failed) and "bookkeeping" in failed[-1].message
    assert final(list(engine.submit(chat(max_new_tokens=3)).events(timeout=30))).usage.output_tokens == 3


def test_whatever_the_kv_pools_memory_held_before_batched_output_is_alone_output(make_engine):
    # The pool is allocated with torch.empty: columns no row has written yet may hold NaN, which no mask hides.
    alone_engine = make_engine(no_prefix_cache=True)
    requests = [chat("Hi!", max_new_tokens=20), chat("What is the capital of France? " * 6, max_new_tokens=12),
                chat("Tell me a story.", max_new_tokens=16)]
    alone = [text_of(list(alone_engine.submit(request).events(timeout=60))) for request in requests]
    engine = make_engine(no_prefix_cache=True)
    pool = engine._scheduler.runner.pool
    for tensor in [*pool.keys, *pool.values]:
        tensor.fill_(float("nan"))
    handles = [engine.submit(request) for request in requests]
    assert [text_of(list(handle.events(timeout=60))) for handle in handles] == alone
