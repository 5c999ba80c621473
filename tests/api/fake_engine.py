"""A scripted engine with the real engine's interface, so API tests can check every wire detail exactly."""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

from app.engine.errors import NotReadyError, QueueFullError
from app.engine.events import Failed, Finished, StopReason, TextDelta, Usage
from app.engine.request import GenerationRequest


@dataclass
class FakeHandle:
    """Yields its events one by one; with delay_s, event i becomes available delay_s * (i + 1) after submit."""
    events: list
    delay_s: float = 0.0
    cancelled: threading.Event = field(default_factory=threading.Event)
    _position: int = 0
    _start: float = field(default_factory=time.monotonic)

    def next_event(self, timeout: float):
        if self._position >= len(self.events):
            time.sleep(timeout)
            return None
        wait = self._start + (self._position + 1) * self.delay_s - time.monotonic()
        if wait > timeout:
            time.sleep(timeout)
            return None
        time.sleep(max(wait, 0))
        event = self.events[self._position]
        self._position += 1
        return event

    def cancel(self) -> None:
        self.cancelled.set()


def prompt_usage(prompt_tokens: int, scripted: Usage) -> Usage:
    """The scripted usage with the prompt filled in: whatever the script says was cached, the rest is input."""
    cached = scripted.cache_read_input_tokens + scripted.cache_creation_input_tokens
    return Usage(prompt_tokens - cached, scripted.output_tokens, scripted.cache_read_input_tokens,
                 scripted.cache_creation_input_tokens)


class FakeEngine:
    """Counts one prompt token per whitespace-separated word of the rendered prompt."""

    model_id = "fake-model"
    accepts_images = False

    def __init__(self, context_window: int = 4096, ready: bool = True):
        self.context_window = context_window
        self.ready = ready
        self.queue_full = False
        self.failure: str | None = None      # set it to make load_error() report a failed load
        self.requests: list[GenerationRequest] = []
        self.handles: list[FakeHandle] = []
        self.scripts: queue.SimpleQueue = queue.SimpleQueue()

    def script(self, events: list, delay_s: float = 0.0) -> None:
        """The events the next submitted generation yields; Finished's input_tokens is filled in."""
        self.scripts.put((events, delay_s))

    def is_ready(self) -> bool:
        return self.ready

    def load_error(self):
        return self.failure

    def stats(self) -> dict:
        return {"submitted": len(self.handles)}

    def render_prompt(self, request: GenerationRequest) -> str:
        if not self.ready:
            raise NotReadyError("loading")
        turns = [f"<{m['role']}> {m['content']}" for m in request.messages]
        return "\n".join(turns) + "\n<assistant> " + request.prefill

    def count_prompt_tokens(self, request: GenerationRequest) -> int:
        return len(self.render_prompt(request).split())

    def submit(self, request: GenerationRequest) -> FakeHandle:
        if not self.ready:
            raise NotReadyError("loading")
        if self.queue_full:
            raise QueueFullError("full")
        self.requests.append(request)
        events, delay_s = self.scripts.get_nowait() if not self.scripts.empty() else (
            [TextDelta("Hello"), TextDelta(" there")], 0.0)
        input_tokens = self.count_prompt_tokens(request)
        events = [Finished(e.stop_reason, prompt_usage(input_tokens, e.usage), e.stop_sequence, e.stats)
                  if isinstance(e, Finished) else e for e in events]
        if not any(isinstance(e, (Finished, Failed)) for e in events):
            events.append(Finished(StopReason.END, Usage(input_tokens, len(events))))
        handle = FakeHandle(events, delay_s)
        self.handles.append(handle)
        return handle
