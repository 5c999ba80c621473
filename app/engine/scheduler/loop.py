"""The one thread that owns the model, and its step loop.

Each step:
  1. admit  — waiting jobs become rows while there is room (a row, and a free slot of the KV pool); each row
              starts from the longest prefix of its prompt that any slot holds (`slots.SlotTable`);
  2. retire — rows whose client has gone end now (so a cancel takes effect within one step);
  3. prefill — up to `prefill_chunk` uncached prompt tokens, over the rows still prefilling, oldest first. A row
              whose prompt is in chooses its first token and joins the decode batch. The chunk bounds how long
              the running streams wait for a newcomer: one chunk's forward per step;
  4. decode — one forward for every row in the batch, each row's constraints on its logits, one batched token
              choice (`choice`), then each row's events (with `overlap_output`, those of the step before, made while
              the forward runs); a row that is over leaves the batch at once, its slot keeping its KV for later
              prompts that start the same way.

HTTP threads never touch tensors: they submit a job and read its events from the job's own queue. Submitting to a
full waiting queue fails at once (the api answers 529). A row's failure (a processor raising) ends that row only;
a failed forward ends the rows that were in it, and the loop goes on.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import torch

from ..errors import NotReadyError, QueueFullError
from ..events import Failed, Finished, StopReason, Usage
from ..job import Job, JobHandle
from ..model.loader import LoadedModel
from ..model.profiles import ThinkingProfile
from .choice import choose_tokens, constrain_rows
from .fault_injection import with_injected_faults
from .forward import ChunkImages, build_runner
from . import token_figures
from .row import Row
from .slots import SlotTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchedulerSettings:
    max_batch_size: int = 16             # rows decoded together
    max_waiting: int = 256               # jobs that may wait for a row; more are refused (529)
    prefill_chunk: int = 512             # prompt tokens fed per step
    kv_budget_bytes: int = 0             # the KV pool's size; 0: a default share of the device's memory
    prefix_cache: bool = True            # idle slots keep their KV for prompts that start the same way
    compile_decode: bool = False         # torch.compile the decode forward (minutes at start on a CPU)
    # A decoding row's events are made while the next forward runs (an accelerator computes it asynchronously),
    # one step after its token is chosen. None: on where the model is on CUDA; on a CPU, where the forward blocks,
    # it would only delay each token's event by a step.
    overlap_output: bool | None = None


class Scheduler:
    def __init__(self, loaded: LoadedModel, profile: ThinkingProfile,
                 settings: SchedulerSettings = SchedulerSettings(), runner=None):
        """`runner` (a test seam): what makes the forward passes; by default the model's, built from `settings`."""
        self.loaded = loaded
        self.profile = profile
        self.settings = settings
        self.runner = with_injected_faults(runner or build_runner(loaded, settings))    # unset: as is
        # Sliding-window and linear-attention caches cannot live in the pool: one row at a time, nothing shared.
        self.batchable = self.runner.batchable
        self.overlap_output = settings.overlap_output if settings.overlap_output is not None \
            else loaded.device.type == "cuda"
        self.max_rows = max(1, min(settings.max_batch_size, self.runner.slots))
        self.slots = SlotTable(self.runner.slots, self.runner, settings.prefix_cache and self.batchable)
        self.prefilling: list[Row] = []
        self.waiting: deque[Job] = deque()          # interactive requests, in order
        self.background: deque[Job] = deque()       # background requests (batches), in order, after any waiting
        self.counts = {"finished": 0, "cancelled": 0, "failed": 0, "steps": 0, "generated_tokens": 0,
                       "prefilled_tokens": 0}
        self._started: dict[int, float] = {}
        self._in_flight = 0                  # jobs submitted and not over yet: waiting, prefilling or decoding
        self._closed = False
        self._lock = threading.Condition()       # (an RLock) guards waiting, _in_flight, _closed; wakes the loop
        self._thread = threading.Thread(target=self._serve_forever, name="thinkserve-generation", daemon=True)
        self._warmed = threading.Event()
        self._warm_up_error: Exception | None = None
        log.info("Generation: %s, up to %d rows, %d KV slots of %d tokens, prefill chunk %d tokens, prefix cache %s",
                 "batched" if self.batchable else "one row at a time (this model's cache cannot live in a pool)",
                 self.max_rows, self.runner.slots, self.runner.slot_tokens, settings.prefill_chunk,
                 "on" if self.slots.share_prefixes else "off")

    # -- the HTTP side ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the generation thread, and return once it has warmed the runner up (compiled the decode step, with
        --compile), on that thread: CUDA graphs can only be replayed by the thread that recorded them."""
        self._thread.start()
        self._warmed.wait()
        if self._warm_up_error is not None:
            raise self._warm_up_error

    def submit(self, job: Job) -> JobHandle:
        """Queue `job`. Raises QueueFullError at once when the waiting queue is full (never for background jobs:
        whoever submits them bounds how many are in flight)."""
        with self._lock:
            if self._closed:
                raise NotReadyError("the engine has been closed")
            if job.request.background:
                self.background.append(job)
                self._lock.notify()
                return JobHandle(job)
            # Counted over every job not yet over, not over the deque: two jobs arriving together at an idle
            # server both have a place, though the loop has not yet taken the first one out of the queue.
            capacity = self.max_rows + self.settings.max_waiting
            if self._in_flight >= capacity:
                self._drop_cancelled_waiting()
            if self._in_flight >= capacity:
                raise QueueFullError(f"{len(self.waiting)} generations are already waiting for the model; "
                                     "try again shortly")
            self._in_flight += 1
            self.waiting.append(job)
            self._lock.notify()
        return JobHandle(job)

    def close(self, timeout: float = 10.0) -> None:
        """Cancel the running rows, fail the waiting jobs, and let the thread exit."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while self.waiting:
                self._in_flight -= 1
                self.waiting.popleft().events.put(Failed("the server is shutting down"))
            while self.background:
                self.background.popleft().events.put(Failed("the server is shutting down"))
            self._lock.notify()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self.runner.release()

    def stats(self) -> dict:
        # in_flight counts every job not over yet; the three below it may miss a row moving between them.
        return {"in_flight": self._in_flight, "running": self.slots.decoding, "prefilling": len(self.prefilling),
                "waiting": len(self.waiting), "background_waiting": len(self.background),
                "max_batch_size": self.max_rows, "max_waiting": self.settings.max_waiting,
                "batched": self.batchable, **self.counts, "prefix_cache": self.slots.stats(),
                "kv_pool": {"slots": self.runner.slots, "slot_tokens": self.runner.slot_tokens,
                            "bytes": getattr(self.runner, "nbytes", 0)}}

    # -- the loop ---------------------------------------------------------------------------------------------

    def _serve_forever(self) -> None:
        try:
            self.runner.warm_up()
        except Exception as error:
            self._warm_up_error = error
            return
        finally:
            self._warmed.set()
        while True:
            with self._lock:
                while not (self._closed or self.waiting or self.background or self.prefilling or self.slots.decoding):
                    self._lock.wait()
                if self._closed:
                    break
            try:
                self.step()
            except Exception as error:
                # A bug outside the model calls (they fail their own rows) must not stop the loop and hang every
                # client: end what is running with the error, keep serving.
                self._fail([*self.prefilling, *self.slots.decoding_rows()], error)
                self.prefilling = []
                self.slots.reset()
        for row in [*self.prefilling, *self.slots.decoding_rows()]:
            row.job.cancelled.set()
            self._retire(row)
        self.prefilling = []
        self.slots.reset()

    @torch.inference_mode()
    def step(self) -> None:
        # Everything a step makes (KV, logits, the rows' token buffers) is an inference tensor, and every step runs
        # in inference mode, so processors may change logits in place and cached KV can be reused.
        self._admit()
        self._retire_cancelled()
        self._prefill()
        if self.slots.decoding:
            self._decode()
        self.counts["steps"] += 1

    def _admit(self) -> None:
        while True:
            with self._lock:
                queue = self.waiting or self.background
                if not queue or not self._has_room_for(queue[0]):
                    return
                job = queue.popleft()
            if job.cancelled.is_set():      # its client left while it waited: don't spend the model on it
                self._end_without_running(job)
                continue
            try:
                row = self._start_row(job)
            except Exception as error:
                log.exception("job %d: could not start", job.job_id)
                self.counts["failed"] += 1
                self._job_over(job)
                job.events.put(Failed(f"generation failed: {type(error).__name__}: {error}"))
                continue
            if row.max_new_tokens == 0:
                self._retire(row)           # the prompt fills the context window: nothing can be generated
            else:
                self.prefilling.append(row)

    def _start_row(self, job: Job) -> Row:
        row = Row(job, self.loaded, self.profile)
        self._started[job.job_id] = time.monotonic()
        if row.max_new_tokens:
            # Always feed at least the last prompt token: its logits choose the first output token.
            _, reused = self.slots.claim(row, row.feed_key, len(row.feed_ids) - 1)
            row.fed = row.cached_tokens = reused
        return row

    def _has_room_for(self, job: Job) -> bool:
        rows = len(self.prefilling) + self.slots.decoding
        if not self.slots.free():
            return False
        # Background work leaves the last row to an interactive request.
        return rows < self.max_rows - (1 if job.request.background and rows else 0)

    def _retire_cancelled(self) -> None:
        for row in [row for row in self.prefilling if row.cancelled]:
            self.prefilling.remove(row)
            self.slots.release(row)
            self._retire(row)
        gone = {i for i, row in enumerate(self.slots.decoding_rows()) if row.cancelled}
        if gone:
            self._leave_batch(gone)

    def _prefill(self) -> None:
        budget = self.settings.prefill_chunk
        for row in list(self.prefilling):
            if budget <= 0:
                return
            chunk = row.prefill_chunk(budget)
            try:
                logits = self.runner.prefill(self.slots.index_of(row), chunk, row.fed,
                                             self._chunk_images(row, len(chunk)))
                row.fed += len(chunk)
                self.counts["prefilled_tokens"] += len(chunk)
                budget -= len(chunk)
                if not row.prefilled:
                    continue
                self.prefilling.remove(row)
                row.image_features = None         # only prefill reads them; decode must not hold them
                figures = token_figures.snapshot([row], logits)
                failed = constrain_rows([row], logits)
                if failed:
                    raise failed[0]
                tokens = choose_tokens([row], logits)
                token_figures.record([row], figures, tokens)
                row.accept(tokens[0])
                row.emit()                        # the first token goes out at once: it is the time to first token
                self.counts["generated_tokens"] += 1
            except Exception as error:
                self._fail([row], error)
                if row in self.prefilling:
                    self.prefilling.remove(row)
                self.slots.release(row, keep=False)
                continue
            if row.stop_reason() is not None:
                self.slots.release(row)
                self._retire(row)
            else:
                self.slots.join_decoding(row)

    def _chunk_images(self, row: Row, length: int) -> ChunkImages | None:
        """The image features the next `length` prompt tokens of `row` need, if they hold image placeholders.
        The vision tower runs at the first such chunk, once per request."""
        before, inside = row.image_placeholders(row.fed, row.fed + length)
        if not inside:
            return None
        if row.image_features is None:
            row.image_features = self.runner.image_features(row.prompt.image_inputs)
        return ChunkImages(row.prompt.image_token_id, row.image_features, before)

    def _decode(self) -> None:
        rows = self.slots.decoding_rows()
        try:
            logits = self.runner.decode([row.next_token for row in rows], [row.fed for row in rows])  # [rows, vocab]
        except Exception as error:
            self._fail(rows, error)
            self.slots.leave_decoding(set(range(len(rows))))
            return
        for row in rows:
            row.fed += 1
        done, failed = set(), {}
        if self.overlap_output:
            # The forward is launched: the last step's tokens become events while it runs. A row whose text
            # matched a stop sequence is over; its line of these logits is not used.
            for index, row in enumerate(rows):
                if self._emit(row, index, failed) and row.stop_reason() is not None:
                    done.add(index)
        choosing = [index for index in range(len(rows)) if index not in done and index not in failed]
        if choosing:
            self._choose([rows[index] for index in choosing], choosing,
                         logits if len(choosing) == len(rows) else logits[choosing], done, failed)
        if done or failed:
            self._leave_batch(done, set(failed))

    def _choose(self, rows: list[Row], indices: list[int], logits: torch.Tensor, done: set[int],
                failed: dict[int, Exception]) -> None:
        """Constrain, choose and accept the next token of `rows` (at `indices` of the batch) from `logits`."""
        figures = token_figures.snapshot(rows, logits)         # the model's own distribution, before constraints
        constraint_failures = constrain_rows(rows, logits)
        tokens = choose_tokens(rows, logits)
        token_figures.record(rows, figures, tokens)
        for position, (index, row) in enumerate(zip(indices, rows)):
            if position in constraint_failures:
                self._fail([row], constraint_failures[position])
                failed[index] = constraint_failures[position]
                continue
            row.accept(tokens[position])
            self.counts["generated_tokens"] += 1
            # Without overlap, every token's events go out now; with it, only an ending row's (end of turn, length).
            if (not self.overlap_output or row.stop_reason() is not None) and not self._emit(row, index, failed):
                continue
            if row.stop_reason() is not None:
                done.add(index)

    def _emit(self, row: Row, index: int, failed: dict[int, Exception]) -> bool:
        try:
            row.emit()
            return True
        except Exception as error:
            self._fail([row], error)
            failed[index] = error
            return False

    # -- endings ----------------------------------------------------------------------------------------------

    def _leave_batch(self, done: set[int], failed: set[int] = frozenset()) -> None:
        """Rows that are over leave the batch: the done ones end with Finished (their slot keeping their KV), the
        failed ones have had their Failed event already."""
        rows = self.slots.decoding_rows()
        for index in sorted(done):
            self._retire(rows[index])      # first: should this raise, the loop's handler still finds them decoding
        self.slots.leave_decoding(done | failed, keep=done)

    def _retire(self, row: Row) -> None:
        finished = row.finish()
        self._log_end(row.job, finished, row.cached_tokens)
        # Counted out before the client can read its end: whoever has its answer finds the engine's stats agree.
        self._job_over(row.job)
        row.send_end(finished)

    def _fail(self, rows: list[Row], error: Exception) -> None:
        rows = [row for row in rows if not row.ended]      # each job ends once
        log.exception("generation failed for job(s) %s", ", ".join(str(row.job.job_id) for row in rows))
        if self.loaded.device.type == "cuda":
            torch.cuda.empty_cache()        # an out-of-memory failure should not starve the next step
        self.counts["failed"] += len(rows)
        for row in rows:
            self._started.pop(row.job.job_id, None)
            self._job_over(row.job)
            row.send_end(Failed(f"generation failed: {type(error).__name__}: {error}"))

    def _drop_cancelled_waiting(self) -> None:
        """A waiting job whose client has gone must not hold its place (called under the lock)."""
        for job in [job for job in self.waiting if job.cancelled.is_set()]:
            self.waiting.remove(job)
            self._end_without_running(job)

    def _end_without_running(self, job: Job) -> None:
        self.counts["cancelled"] += 1
        log.info("job %d: cancelled before it started", job.job_id)
        self._job_over(job)
        job.events.put(Finished(StopReason.CANCELLED, Usage(len(job.prompt_ids), 0)))

    def _job_over(self, job: Job) -> None:
        if job.request.background:
            return                          # never counted: see submit()
        with self._lock:                    # re-entrant: also called from submit(), which holds it
            self._in_flight -= 1

    def _log_end(self, job: Job, finished: Finished, cached: int) -> None:
        self.counts["cancelled" if finished.stop_reason is StopReason.CANCELLED else "finished"] += 1
        seconds = time.monotonic() - self._started.pop(job.job_id, time.monotonic())
        output = finished.usage.output_tokens
        forms = finished.stats.get("tool_call_forms") if finished.stats else None
        log.info("job %d: %d prompt tokens (%d cached), %d output tokens, %.2f s, %.1f tok/s, %s%s", job.job_id,
                 len(job.prompt_ids), cached, output, seconds, output / seconds if seconds > 0 else 0.0,
                 finished.stop_reason.value, f" (calls opened as {', '.join(forms)})" if forms else "")

