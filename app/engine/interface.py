"""The contract between the api layer and an engine. The real one is `app.engine.runtime.LocalEngine`; the API
tests use a scripted fake with the same shape. Nothing here imports torch."""
from __future__ import annotations

from typing import Protocol

from .events import Event
from .model.profiles import ThinkingProfile
from .prepared import PreparedPrompt
from .request import GenerationRequest


class GenerationHandle(Protocol):
    def next_event(self, timeout: float) -> Event | None:
        """The next event, or None if none arrived within `timeout` seconds. After a Finished or Failed event
        there are no more."""

    def cancel(self) -> None:
        """Ask the step loop to stop this generation (the client went away). Safe to call at any time, twice."""


class Engine(Protocol):
    model_id: str            # the served model's name, e.g. "SmolLM2-135M-Instruct"
    context_window: int      # prompt + generated tokens the model can hold
    accepts_images: bool     # a vision-language model; False for text-only models (and while loading)
    # The served model's thinking markers and how thinking is switched (app.engine.model.profiles); None while loading.
    thinking_profile: ThinkingProfile | None

    def is_ready(self) -> bool:
        """True once the model is loaded."""

    def load_error(self) -> str | None:
        """Why loading failed, if it did."""

    def render_prompt(self, request: GenerationRequest) -> str:
        """The exact prompt text the model sees (chat template + prefill). Raises NotReadyError while loading."""

    def prepare(self, request: GenerationRequest) -> PreparedPrompt:
        """The prompt as the model reads it (rendered, tokenized, images expanded), prepared once: its ids serve
        count_tokens, usage and the context check, and `submit` takes it. Raises NotReadyError or PromptError."""

    def count_prompt_tokens(self, request: GenerationRequest) -> int:
        """len(prepare(request).ids)."""

    def stats(self) -> dict:
        """Figures for /health: rows running and waiting, the prefix cache, counts of finished requests."""

    def submit(self, request: GenerationRequest, prepared: PreparedPrompt | None = None) -> GenerationHandle:
        """Queue a generation of `prepared` (the request is prepared again when it is not given). Raises
        QueueFullError when the bounded queue is full, NotReadyError while loading."""
