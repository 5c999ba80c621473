"""For tests only: make one decode step raise an out-of-memory error, so a real server process can be shown to
turn a failed forward into the client's `event: error` and then go on serving.

Set `THINKSERVE_TEST_OOM_AFTER_DECODE_STEPS=N` in the server's environment: decode step N+1 of the process raises
`torch.OutOfMemoryError` once; every later step runs normally. Unset (always, outside tests), nothing changes.
"""
from __future__ import annotations

import logging
import os

import torch


ENV_VAR = "THINKSERVE_TEST_OOM_AFTER_DECODE_STEPS"
log = logging.getLogger(__name__)


class OnceFailingRunner:
    """A runner whose decode raises once, after `after_steps` successful ones; everything else is the runner's."""

    def __init__(self, runner, after_steps: int):
        self._runner = runner
        self._steps_left = after_steps
        self._fired = False

    def __getattr__(self, name):
        return getattr(self._runner, name)

    def decode(self, *args, **kwargs):
        if not self._fired:
            if self._steps_left <= 0:
                self._fired = True
                raise torch.OutOfMemoryError(f"CUDA out of memory (injected by {ENV_VAR})")
            self._steps_left -= 1
        return self._runner.decode(*args, **kwargs)


def with_injected_faults(runner):
    after = os.environ.get(ENV_VAR)
    if not after:
        return runner
    log.warning("%s=%s: one decode step will fail on purpose (a test hook)", ENV_VAR, after)
    return OnceFailingRunner(runner, int(after))
