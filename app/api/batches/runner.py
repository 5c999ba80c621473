"""The batch runner: a background thread that feeds queued batch requests to the engine, several at once.

Each claimed request runs in a daemon thread of its own through `execute` (the Messages service function, with
the engine told the work is background), so the engine decodes up to `concurrency` of them together in one batch.
The main thread sweeps every `sweep_s`, or at once when woken (a batch created or canceled, a request done): it ends
what was canceled or expired, stops running requests whose batch was, and claims more while the engine is ready.
It runs only while some batch has not ended, and starts again on the next wake, so the many apps a test suite
builds leave no thread behind once their batches are done.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ...engine.interface import GenerationHandle
from ...service.ids import new_id
from ..errors import ApiError, NotReadyError, OverloadedError, ServerError
from .objects import errored, succeeded
from .store import BatchStore, ClaimedRequest

log = logging.getLogger(__name__)

# execute(params, stop, on_submit) -> a Message dict (stop_reason None when `stop` cut it short); raises ApiError.
Execute = Callable[[dict, Callable[[], bool], Callable[[GenerationHandle], None]], dict]
# The engine cannot take it now (still loading, or full): the request waits in the queue, it does not fail.
RETRY_LATER = (NotReadyError, OverloadedError)
RETRY_PAUSE_S = 1.0


@dataclass
class Task:
    request: ClaimedRequest
    # Why the runner wants it stopped: "canceled", "expired" (its result says so) or "shutdown" (it is requeued).
    stop_reason: str | None = None
    handle: GenerationHandle | None = None
    thread: threading.Thread | None = None

    def generated_tokens(self) -> int:
        # The real engine's handle counts tokens as the step loop makes them; another engine's may not.
        return getattr(self.handle, "generated_tokens", 0) or 0


class BatchRunner:
    def __init__(self, store: BatchStore, execute: Execute, *, ready: Callable[[], bool], concurrency: int,
                 clock: Callable[[], float] = time.time, sweep_s: float = 0.5):
        self.store = store
        self.execute = execute
        self.ready = ready
        self.concurrency = max(1, concurrency)
        self.clock = clock
        self.sweep_s = sweep_s
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None
        self._tasks: dict[tuple[str, int], Task] = {}
        self._closed = False
        self._paused_until = 0.0

    # -- from the routes ----------------------------------------------------------------------------------------

    def wake(self) -> None:
        """Something changed (a batch created or canceled): sweep now, starting the thread if it is not running."""
        with self._lock:
            if self._closed:
                return
            self._wakeup.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="thinkserve-batch-runner", daemon=True)
                self._thread.start()

    def live_output_tokens(self, batch_id: str) -> int:
        """Tokens generated so far by this batch's running requests (ended ones are counted in the store)."""
        with self._lock:
            return sum(t.generated_tokens() for t in self._tasks.values() if t.request.batch_id == batch_id)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop: running requests are cancelled and go back to the queue, to run again at the next start."""
        with self._lock:
            self._closed = True
            tasks, thread = list(self._tasks.values()), self._thread
            for task in tasks:
                task.stop_reason = task.stop_reason or "shutdown"
            self._wakeup.set()
        deadline = time.monotonic() + timeout_s
        for worker in [thread] + [getattr(t, "thread", None) for t in tasks]:
            if worker is not None:
                worker.join(max(0.0, deadline - time.monotonic()))

    # -- the main thread ----------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            try:
                if not self._step():
                    return
            except Exception:   # the store failing (disk full...) must not kill batches for good: try again
                log.exception("batch runner: sweep failed; retrying")
            self._wakeup.wait(self.sweep_s)
            self._wakeup.clear()

    def _step(self) -> bool:
        """One sweep; False when the thread should end (closed, or nothing left to do)."""
        now = self.clock()
        self.store.sweep(now=now)
        self._stop_abandoned(now)
        if self.ready() and now >= self._paused_until:
            self._start_more(now)
        with self._lock:
            if self._closed or (not self._tasks and not self.store.has_unfinished()):
                self._thread = None      # under the lock: a wake() after this starts a new thread
                return False
        return True

    def _stop_abandoned(self, now: float) -> None:
        with self._lock:
            running = [t for t in self._tasks.values() if t.stop_reason is None]
        if not running:
            return
        reasons = self.store.stop_reasons({t.request.batch_id for t in running}, now=now)
        for task in running:
            if task.request.batch_id in reasons:
                task.stop_reason = reasons[task.request.batch_id]   # the task's `stop` sees it at its next poll

    def _start_more(self, now: float) -> None:
        with self._lock:
            free = self.concurrency - len(self._tasks)
        if free <= 0:
            return
        for request in self.store.claim(free, now=now):
            task = Task(request)
            thread = threading.Thread(target=self._run, args=(task,), daemon=True,
                                      name=f"thinkserve-batch-{request.batch_id[-6:]}-{request.position}")
            task.thread = thread
            with self._lock:
                self._tasks[(request.batch_id, request.position)] = task
                if self._closed:
                    task.stop_reason = "shutdown"
            thread.start()

    # -- one request ----------------------------------------------------------------------------------------------

    def _run(self, task: Task) -> None:
        request = task.request
        try:
            result, output_tokens = self._outcome(task)
            if result is None:
                self.store.requeue(request, now=self.clock())
            else:
                self.store.finish(request, result, output_tokens=output_tokens, now=self.clock())
        except Exception:
            # Left running in the store: the next start runs it again. Nothing else may write its result.
            log.exception("batch runner: could not record the result of %s #%d", request.batch_id, request.position)
        finally:
            with self._lock:
                self._tasks.pop((request.batch_id, request.position), None)
            self._wakeup.set()

    def _outcome(self, task: Task) -> tuple[dict | None, int]:
        """(the result to record, output tokens), or (None, 0) to put the request back in the queue."""
        def on_submit(handle: GenerationHandle) -> None:
            task.handle = handle
        try:
            message = self.execute(task.request.params, lambda: task.stop_reason is not None, on_submit)
        except RETRY_LATER as error:
            if task.stop_reason in ("canceled", "expired"):
                return {"type": task.stop_reason}, 0
            log.info("batch runner: %s; %s #%d waits", error.message, task.request.batch_id, task.request.position)
            self._paused_until = self.clock() + RETRY_PAUSE_S
            return None, 0
        except ApiError as error:
            # Exactly what POST /v1/messages would have answered, envelope and all.
            return errored(error.body(new_id("req_"))), 0
        except Exception as error:
            log.exception("batch runner: %s #%d failed", task.request.batch_id, task.request.position)
            return errored(ServerError(f"internal server error: {type(error).__name__}").body(new_id("req_"))), 0
        if message.get("stop_reason") is None:        # stopped before the engine finished it
            if task.stop_reason in ("canceled", "expired"):
                return {"type": task.stop_reason}, task.generated_tokens()
            return None, 0
        return succeeded(message), message["usage"]["output_tokens"]
