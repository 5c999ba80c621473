"""The step loop against a scripted runner (tests/engine/scripted_runner.py), with no model: admission, the KV
pool's slots, prefix sharing, cancellation and background priority. Every request's tokens are the scripted
model's own continuation of its prompt, so any slip in which slot holds what shows as a wrong token.

The same guarantees on the real default model: test_batching.py."""
from __future__ import annotations

import random
import threading
import time

import pytest
import torch
from engine_helpers import chat, text_of
from scripted_runner import ScriptedRunner, next_token

from app.config import Config
from app.engine.events import Finished, StopReason
from app.engine.job import Job
from app.engine.model.loader import LoadedModel
from app.engine.model.profiles import profile_for
from app.engine.prepared import PreparedPrompt
from app.engine.scheduler.loop import Scheduler, SchedulerSettings
from app.engine.scheduler.slots import SlotTable

def _ids(seed: int, length: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(1000, 3000) for _ in range(length)]


SYSTEM = _ids(0, 40)                                                     # a shared "system prompt"


def prompt(seed: int, length: int, shared: bool = False) -> list[int]:
    own = _ids(seed, length)
    return SYSTEM + own if shared else own


def expected(ids: list[int], count: int) -> list[int]:
    ids, out = list(ids), []
    for _ in range(count):
        out.append(next_token(ids))
        ids.append(out[-1])
    return out


@pytest.fixture
def run(smollm_tokenizer):
    schedulers = []

    def make(runner=None, **settings):
        loaded = LoadedModel(model=None, tokenizer=smollm_tokenizer, model_id="scripted", context_window=512,
                             device=torch.device("cpu"), end_of_turn_ids=frozenset({smollm_tokenizer.eos_token_id}))
        runner = runner or ScriptedRunner()
        scheduler = Scheduler(loaded, profile_for(smollm_tokenizer, Config()), SchedulerSettings(**settings),
                              runner=runner)
        scheduler.start()
        schedulers.append(scheduler)
        return scheduler, runner

    yield make
    for scheduler in schedulers:
        scheduler.close()


def submit(scheduler, ids: list[int], new_tokens: int, **options):
    job = Job(request=chat(max_new_tokens=new_tokens, **options), prompt=PreparedPrompt(text="", ids=ids, cache_key=ids))
    return scheduler.submit(job)


MIX = [(prompt(1, 5), 7), (prompt(2, 30, shared=True), 12), (prompt(3, 3), 20), (prompt(4, 60, shared=True), 4),
       (prompt(5, 17), 15), (prompt(6, 9, shared=True), 9), (prompt(7, 1), 11), (prompt(8, 44), 6)]


def answer(handle, ids: list[int], new_tokens: int, tokenizer) -> None:
    """The job ran to its length and its text is the scripted model's continuation of `ids`."""
    events = list(handle.events(timeout=30))
    assert isinstance(events[-1], Finished) and events[-1].stop_reason is StopReason.LENGTH, events[-1]
    assert text_of(events) == tokenizer.decode(expected(ids, new_tokens))
    assert events[-1].usage.output_tokens == new_tokens


def test_alone_together_joining_and_cached_every_row_gets_its_own_continuation(run, smollm_tokenizer):
    scheduler, runner = run(prefix_cache=False)
    for ids, n in MIX:                                                      # alone
        answer(submit(scheduler, ids, n), ids, n, smollm_tokenizer)
    assert max(runner.decode_rows) == 1
    handles = [submit(scheduler, ids, n) for ids, n in MIX]                # together
    for handle, (ids, n) in zip(handles, MIX):
        answer(handle, ids, n, smollm_tokenizer)
    assert max(runner.decode_rows) > 4

    scheduler, runner = run(prefill_chunk=8)                                # joining, prefixes shared
    handles = []
    for ids, n in MIX:
        handles.append(submit(scheduler, ids, n))
        time.sleep(0.002)
    for handle, (ids, n) in zip(handles, MIX):
        answer(handle, ids, n, smollm_tokenizer)
    handles = [submit(scheduler, ids, n) for ids, n in MIX]                # again: from the cache
    for handle, (ids, n) in zip(handles, MIX):
        answer(handle, ids, n, smollm_tokenizer)
    stats = scheduler.stats()["prefix_cache"]
    assert stats["hits"] >= len(MIX) and stats["slots"] == runner.slots


def test_a_prompt_seen_before_reads_only_its_last_token(run, smollm_tokenizer):
    scheduler, runner = run()
    ids = prompt(11, 100)
    answer(submit(scheduler, ids, 5), ids, 5, smollm_tokenizer)
    assert runner.prefilled_tokens == 100
    answer(submit(scheduler, ids, 5), ids, 5, smollm_tokenizer)
    # Copied out of the first run's slot, which holds more (the answer) and is kept for the next turn.
    assert runner.prefilled_tokens == 101 and runner.copies == 1
    longer = ids + expected(ids, 5) + prompt(12, 10)                        # the next turn of that conversation
    answer(submit(scheduler, longer, 3), longer, 3, smollm_tokenizer)
    assert runner.prefilled_tokens == 101 + 1 + 10        # its last answer token was never fed, then the new turn
    assert runner.copies == 1                              # that slot held nothing else: taken as it is


def test_a_running_rows_prefix_is_copied_into_a_new_rows_slot(run, smollm_tokenizer):
    scheduler, runner = run(prefill_chunk=1000)
    first, second = SYSTEM + prompt(21, 4), SYSTEM + prompt(22, 6)
    running = submit(scheduler, first, 200)
    assert running.next_event(timeout=10) is not None                       # decoding now
    answer(submit(scheduler, second, 4), second, 4, smollm_tokenizer)
    assert runner.copies == 1 and runner.prefilled_tokens == len(first) + 6
    running.cancel()
    assert list(running.events(timeout=10))[-1].stop_reason is StopReason.CANCELLED


def test_rows_wait_for_a_free_slot_and_the_slots_never_grow(run, smollm_tokenizer):
    scheduler, runner = run(runner=ScriptedRunner(slots=3), max_batch_size=8)
    assert scheduler.max_rows == 3
    requests = [(prompt(30 + i, 8), 10) for i in range(10)]
    handles = [submit(scheduler, ids, n) for ids, n in requests]
    for handle, (ids, n) in zip(handles, requests):
        answer(handle, ids, n, smollm_tokenizer)
    assert max(runner.decode_rows) == 3 and len(runner.content) == 3
    assert scheduler.stats()["prefix_cache"]["entries"] <= 3


class _GatedRunner(ScriptedRunner):
    """Runs a decode forward only when the test allows one, so a test knows exactly how many the loop made."""

    def __init__(self):
        super().__init__()
        self._gate = threading.Semaphore(0)

    def allow(self, forwards: int) -> None:
        self._gate.release(forwards)

    def decode(self, tokens, positions):
        self._gate.acquire()
        return super().decode(tokens, positions)


def test_a_cancelled_row_ends_within_a_step_and_the_others_go_on(run, smollm_tokenizer):
    gated = _GatedRunner()
    scheduler, _ = run(runner=gated)
    long_ids, other_ids = prompt(41, 10), prompt(42, 10)
    doomed, other = submit(scheduler, long_ids, 400), submit(scheduler, other_ids, 300)
    gated.allow(3)
    deadline = time.monotonic() + 10
    while len(gated.decode_rows) < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    doomed.cancel()              # the loop now waits inside its 4th forward
    gated.allow(1)               # that forward ends; the next step retires the row before its forward
    final = list(doomed.events(timeout=10))[-1]
    assert final.stop_reason is StopReason.CANCELLED
    assert final.usage.output_tokens <= 5           # its first token from the prompt, and one per forward
    gated.allow(1000)
    answer(other, other_ids, 300, smollm_tokenizer)


def test_background_rows_leave_the_last_row_to_interactive_work(run, smollm_tokenizer):
    scheduler, runner = run(max_batch_size=2)
    background = [submit(scheduler, prompt(50 + i, 5), 300, background=True) for i in range(3)]
    assert background[0].next_event(timeout=10) is not None
    ids = prompt(59, 5)
    answer(submit(scheduler, ids, 4), ids, 4, smollm_tokenizer)
    assert scheduler.stats()["background_waiting"] == 2
    for handle in background:
        handle.cancel()
        assert list(handle.events(timeout=10))[-1].stop_reason is StopReason.CANCELLED


def test_a_failed_decode_fails_its_rows_and_the_next_request_is_served(run, smollm_tokenizer):
    scheduler, runner = run(runner=ScriptedRunner(fail_decode_at=3))
    doomed = [submit(scheduler, prompt(60 + i, 6), 20) for i in range(2)]
    for handle in doomed:
        assert type(list(handle.events(timeout=10))[-1]).__name__ == "Failed"
    ids = prompt(69, 6)
    answer(submit(scheduler, ids, 8), ids, 8, smollm_tokenizer)


def test_the_runner_warms_up_on_the_thread_that_runs_every_step(run, smollm_tokenizer):
    """A compiled step is compiled, and its CUDA graphs recorded, where it will be replayed: start() returns once
    the generation thread has warmed the runner up."""
    scheduler, runner = run()
    assert runner.warmed_on == scheduler._thread.name == "thinkserve-generation"
    ids = prompt(50, 6)
    answer(submit(scheduler, ids, 5), ids, 5, smollm_tokenizer)


class _FailingWarmUp(ScriptedRunner):
    def warm_up(self) -> None:
        raise RuntimeError("inductor failed")


def test_a_failed_warm_up_fails_the_start(run):
    with pytest.raises(RuntimeError, match="inductor failed"):
        run(runner=_FailingWarmUp())


class _WatchedRunner(ScriptedRunner):
    """Records, at each decode forward, how many accepted tokens of each row still wait for their events."""

    def __init__(self):
        super().__init__()
        self.scheduler = None
        self.unemitted: list[list[int]] = []

    def decode(self, tokens, positions):
        self.unemitted.append([row.unemitted for row in self.scheduler.slots.decoding_rows()])
        return super().decode(tokens, positions)


@pytest.mark.parametrize("overlap", [False, True])
def test_events_made_while_the_next_forward_runs_are_the_same_events(run, smollm_tokenizer, overlap):
    """With overlap_output (the default on CUDA), a decoding row's tokens become events after the next forward is
    launched; the output, stop sequences and usage included, is what it is without."""
    watched = _WatchedRunner()
    scheduler, runner = run(runner=watched, overlap_output=overlap)
    watched.scheduler = scheduler
    requests = [(prompt(70 + i, 6 + i), 12) for i in range(4)]
    handles = [submit(scheduler, ids, n) for ids, n in requests]
    for handle, (ids, n) in zip(handles, requests):
        answer(handle, ids, n, smollm_tokenizer)
    # A stop sequence ends the row on the token that completes it, though that token's text is made a step late.
    ids = prompt(80, 8)
    words = [smollm_tokenizer.decode(expected(ids, k)) for k in range(1, 13)]
    stop = words[6][len(words[5]):].strip()
    assert stop and stop not in words[5]
    events = list(submit(scheduler, ids, 40, stop_sequences=(stop,)).events(timeout=30))
    assert events[-1].stop_reason is StopReason.STOP_SEQUENCE and events[-1].stop_sequence == stop
    assert events[-1].usage.output_tokens == 7 and stop not in text_of(events)
    waiting = {count for counts in watched.unemitted for count in counts}
    assert waiting == ({0, 1} if overlap else {0})


class _Owner:
    def __init__(self, ids):
        self.ids, self.fed = ids, len(ids)

    def fed_cache_key(self):
        return self.ids[:self.fed]


def test_slot_table_keeps_the_decode_batch_at_the_front_and_evicts_the_least_recently_used():
    runner = ScriptedRunner(slots=4)
    table = SlotTable(4, runner, share_prefixes=True)
    rows = [_Owner([i] * (i + 1)) for i in range(3)]
    for row in rows:
        slot, reused = table.claim(row, row.ids, len(row.ids))
        runner.content[slot] = list(row.ids)
        table.join_decoding(row)
    assert table.decoding_rows() == rows
    table.leave_decoding({0}, keep={0})            # the last row takes the first place
    assert table.decoding_rows() == [rows[2], rows[1]] and runner.content[0] == rows[2].ids
    table.leave_decoding({0, 1}, keep={0, 1})
    assert table.decoding == 0 and table.stats()["entries"] == 3
    newcomer = _Owner([9, 9])
    slot, reused = table.claim(newcomer, newcomer.ids, 2)
    assert reused == 0 and table.slots[slot].key == [] and runner.content[slot] == []   # the empty slot first
    again = _Owner([0])
    slot, reused = table.claim(again, [0, 5], 1)
    assert reused == 1 and runner.content[slot] == [0]                         # row 0's idle slot, as it is
