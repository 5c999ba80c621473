"""One queued generation and the handle its submitter reads events from.

The step loop writes a job's events into the job's own queue; the submitting (HTTP) thread reads them with a
timeout. Nothing here touches the model, so nothing here imports torch.
"""
from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from .constraints import ConstraintPlan
from .events import TERMINAL_EVENTS, Event
from .prepared import PreparedPrompt
from .request import GenerationRequest

_job_ids = itertools.count(1)


@dataclass
class Job:
    request: GenerationRequest
    prompt: PreparedPrompt               # prepared by the submitter, so counts agree with usage
    # Made by the submitter too (grammars cached), so a schema the grammar cannot take is the caller's 400.
    constraints: ConstraintPlan = field(default_factory=ConstraintPlan)
    job_id: int = field(default_factory=lambda: next(_job_ids))
    # Unbounded on purpose: the model thread must never block on a slow reader. At most max_new_tokens events.
    events: queue.Queue = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    generated_tokens: int = 0            # written by the step loop as it goes: how far the job has got

    @property
    def prompt_ids(self) -> list[int]:
        return self.prompt.ids


class JobHandle:
    """The `GenerationHandle` of a submitted job."""

    def __init__(self, job: Job):
        self._job = job

    @property
    def job_id(self) -> int:
        return self._job.job_id

    def next_event(self, timeout: float) -> Event | None:
        try:
            return self._job.events.get(timeout=timeout)
        except queue.Empty:
            return None

    @property
    def generated_tokens(self) -> int:
        """Tokens generated so far (the step loop may be a step ahead of the events read)."""
        return self._job.generated_tokens

    def cancel(self) -> None:
        self._job.cancelled.set()

    def events(self, timeout: float = 60.0) -> Iterator[Event]:
        """Every event up to and including the final Finished or Failed, for notebooks and tests.

        Raises TimeoutError if the step loop goes `timeout` seconds without producing one.
        """
        while True:
            event = self.next_event(timeout)
            if event is None:
                raise TimeoutError(f"job {self.job_id}: no event within {timeout} s")
            yield event
            if isinstance(event, TERMINAL_EVENTS):
                return
