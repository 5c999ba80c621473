"""The one thread that owns the model, and the bounded queue of jobs waiting for it.

HTTP threads never touch tensors: they submit a job and read its events from the job's own queue. Submitting to a
full queue fails at once (the api answers 529 overloaded) instead of blocking a request thread. One job's failure
is reported to that job only; the worker goes on with the next.

Capacity is one running job plus `max_queue` waiting ones, counted when jobs are admitted and when they end, not
by what the queue holds: otherwise a job the worker has not yet picked up (it is still waking) would hold a
waiting place, and two requests arriving together at an idle server with --max-queue 1 could see a 529.
"""
from __future__ import annotations

import logging
import queue
import threading
import time

import torch

from .errors import NotReadyError, QueueFullError
from .events import Failed, Finished, StopReason, Usage
from .generation import run_generation
from .job import Job, JobHandle
from .loader import LoadedModel
from .profiles import ThinkingProfile

log = logging.getLogger(__name__)

_STOP = object()                         # queued by close(): the worker thread exits when it takes it


class GenerationWorker:
    def __init__(self, loaded: LoadedModel, max_queue: int, profile: ThinkingProfile | None = None):
        self._loaded = loaded
        self._profile = profile          # the one the submitter renders prompts with
        self._max_waiting = max(0, max_queue)   # 0: one generation at a time, none waits
        # Admission is decided by _admitted; the queue's own bound (every admitted job, plus close()'s sentinel) is
        # a backstop that put_nowait never meets.
        self._jobs: queue.Queue = queue.Queue(maxsize=self._max_waiting + 2)
        self._admitted = 0               # jobs submitted and not over yet: waiting + running
        self._current: Job | None = None
        self._closed = False
        self._lock = threading.Lock()    # guards _admitted and _closed; orders submit() against close()
        self._thread = threading.Thread(target=self._serve_forever, name="thinkserve-generation", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job) -> JobHandle:
        """Queue `job`. Raises QueueFullError without waiting when the queue is full."""
        with self._lock:
            if self._closed:
                raise NotReadyError("the engine has been closed")
            if self._admitted > self._max_waiting:
                self._drop_cancelled_waiting_jobs()
            if self._admitted > self._max_waiting:
                raise QueueFullError(f"{self._max_waiting} generations are already waiting for the model; "
                                     "try again shortly")
            self._admitted += 1
            self._jobs.put_nowait(job)
        return JobHandle(job)

    def _drop_cancelled_waiting_jobs(self) -> None:
        """A waiting job whose client has gone must not hold its place: end those, requeue the rest in order.

        Called under self._lock, so no other submit() or close() puts meanwhile; the worker may take a job while
        this runs, which only makes more room.
        """
        waiting = []
        while True:
            try:
                waiting.append(self._jobs.get_nowait())
            except queue.Empty:
                break
        for job in waiting:
            if job.cancelled.is_set():
                _end_without_running(job)
                self._admitted -= 1
            else:
                self._jobs.put_nowait(job)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the running generation, end the waiting ones, and let the thread exit."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while True:
                try:
                    waiting = self._jobs.get_nowait()
                except queue.Empty:
                    break
                waiting.events.put(Failed("the server is shutting down"))
            current = self._current
            if current is not None:
                current.cancelled.set()
            self._jobs.put_nowait(_STOP)  # there is room: the queue was just emptied under the lock
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _serve_forever(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            with self._lock:
                self._current = job
                if self._closed:         # taken just before close() drained the queue: it must not run
                    job.cancelled.set()
            try:
                self._serve(job)
            finally:
                with self._lock:
                    self._current = None
                    self._admitted -= 1

    def _serve(self, job: Job) -> None:
        prompt_tokens = len(job.prompt_ids)
        if job.cancelled.is_set():       # its client left while it waited: don't spend the model on it
            _end_without_running(job)
            return
        started = time.monotonic()
        try:
            finished = run_generation(self._loaded, job, job.events.put, self._profile)
        except Exception as error:
            log.exception("job %d: generation failed", job.job_id)
            if self._loaded.device.type == "cuda":
                torch.cuda.empty_cache()  # an out-of-memory failure should not starve the next job
            job.events.put(Failed(f"generation failed: {type(error).__name__}: {error}"))
            return
        job.events.put(finished)
        seconds = time.monotonic() - started
        output_tokens = finished.usage.output_tokens
        log.info("job %d: %d prompt tokens, %d output tokens, %.2f s, %.1f tok/s, %s", job.job_id, prompt_tokens,
                 output_tokens, seconds, output_tokens / seconds if seconds > 0 else 0.0, finished.stop_reason.value)


def _end_without_running(job: Job) -> None:
    job.events.put(Finished(StopReason.CANCELLED, Usage(len(job.prompt_ids), 0)))
    log.info("job %d: cancelled before it started", job.job_id)
