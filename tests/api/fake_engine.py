"""A scripted engine with the real engine's interface, so API tests can check every wire detail exactly."""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

from app.engine.errors import NotReadyError, PromptError, QueueFullError
from app.engine.events import Failed, Finished, StopReason, TextDelta, Usage
from app.engine.prepared import PreparedPrompt, split_at_image_markers
from app.engine.request import GenerationRequest

IMAGE_TOKENS = 4      # what one image expands to in the fake model's prompt


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
    """The scripted usage with the prompt filled in: whatever the script says was cached, the rest computed."""
    return Usage(prompt_tokens - scripted.cached_prompt_tokens, scripted.output_tokens, scripted.cached_prompt_tokens)


class FakeEngine:
    """Counts one prompt token per whitespace-separated word of the rendered prompt."""

    model_id = "fake-model"
    accepts_images = False            # a test sets it to stand in for a vision-language model

    def __init__(self, context_window: int = 4096, ready: bool = True):
        self.context_window = context_window
        self.ready = ready
        self.queue_full = False
        self.failure: str | None = None      # set it to make load_error() report a failed load
        self.requests: list[GenerationRequest] = []
        self.handles: list[FakeHandle] = []
        self.prepared: list[PreparedPrompt | None] = []    # what each submit was given (None: not prepared)
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

    def prepare(self, request: GenerationRequest) -> PreparedPrompt:
        """Each image reads as `<image>` in the text and counts IMAGE_TOKENS tokens, as a processor expands it."""
        if request.images and not self.accepts_images:
            raise PromptError("the fake model cannot see images")
        pieces = split_at_image_markers(self.render_prompt(request), request.image_nonce)
        text = "".join(" <image> " if isinstance(piece, int) else piece for piece in pieces)
        images = sum(isinstance(piece, int) for piece in pieces)
        ids = [0] * (len(text.split()) - images + IMAGE_TOKENS * images)
        return PreparedPrompt(text=text, ids=ids, cache_key=ids)

    def count_prompt_tokens(self, request: GenerationRequest) -> int:
        return len(self.prepare(request).ids)

    def submit(self, request: GenerationRequest, prepared: PreparedPrompt | None = None) -> FakeHandle:
        if not self.ready:
            raise NotReadyError("loading")
        self.prepared.append(prepared)
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
