"""The one path every generation takes, whatever protocol asked for it: prepare → check the context → submit →
engine events. The adapters (app/api: Anthropic's Messages, Message Batches and render; OpenAI's chat completions)
validate and convert their own JSON into a GenerationRequest first, and write the events in their own shapes after.

It knows the engine's contract (app.engine.interface) and the service's errors, and nothing of HTTP or any JSON.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from ..engine import errors as engine_errors
from ..engine.events import Event, Failed, Finished
from ..engine.interface import Engine, GenerationHandle
from ..engine.prepared import PreparedPrompt
from ..engine.request import GenerationRequest
from .errors import InvalidRequestError, NotReadyError, OverloadedError

POLL_S = 0.2   # how often an HTTP thread waiting on the engine checks whether its client is still there


@contextmanager
def engine_errors_as_api_errors():
    """The engine's exceptions, as the statuses clients expect for them."""
    try:
        yield
    except engine_errors.QueueFullError:
        raise OverloadedError("the server is busy: the generation queue is full") from None
    except engine_errors.NotReadyError as exc:
        raise NotReadyError(str(exc)) from None
    except (engine_errors.PromptError, engine_errors.PromptTooLongError, engine_errors.ToolGrammarError) as exc:
        raise InvalidRequestError(str(exc)) from None


def prepare(engine: Engine, generation: GenerationRequest) -> PreparedPrompt:
    """The request rendered and tokenized (images processed), once: its ids are the count, and it is submitted."""
    with engine_errors_as_api_errors():
        return engine.prepare(generation)


def check_context(input_tokens: int, max_tokens: int, window: int, *, window_may_cut: bool = False) -> None:
    """`window_may_cut`: the client accepts an output the window cuts short (Anthropic's beta
    `model-context-window-exceeded-2025-08-26`: it then stops with `model_context_window_exceeded`)."""
    # Claude Code parses the second message and retries with a smaller max_tokens, so it must read exactly so.
    if input_tokens > window:
        raise InvalidRequestError(f"prompt is too long: {input_tokens} tokens > {window} maximum", param="messages")
    if input_tokens + max_tokens > window and not window_may_cut:
        raise InvalidRequestError(f"input length and `max_tokens` exceed context limit: "
                                  f"{input_tokens} + {max_tokens} > {window}, "
                                  f"decrease input length or `max_tokens` and try again", param="max_tokens")


@dataclass
class Started:
    """A generation the engine has accepted: its prompt (counted once) and the handle its events come from."""
    generation: GenerationRequest
    prepared: PreparedPrompt
    handles: list[GenerationHandle]

    @property
    def handle(self) -> GenerationHandle:
        return self.handles[0]

    @property
    def input_tokens(self) -> int:
        return len(self.prepared.ids)

    def cancel(self) -> None:
        for handle in self.handles:
            handle.cancel()


def start(engine: Engine, generation: GenerationRequest, *, copies: int = 1, fill_window: bool = False,
          prepared: PreparedPrompt | None = None, window_may_cut: bool = False) -> Started:
    """prepare → check the context → submit. Raises ApiError (the 4xx/5xx a client sees).

    `copies` submits the same prepared prompt that many times (OpenAI's `n`): independent samples, each its own row,
    the later ones reading the prompt from the prefix cache (seeded ones seed + i). If a later submit is refused, the earlier are cancelled.
    `fill_window`: the request set no output cap (OpenAI's may omit it); it may use the rest of the context window.
    `prepared`: the generation's prompt when the caller prepared it already (context editing counts it), so it is
    rendered and tokenized once all the same. `window_may_cut`: see `check_context`."""
    prepared = prepared if prepared is not None else prepare(engine, generation)
    if fill_window:
        room = engine.context_window - len(prepared.ids)
        generation = replace(generation, max_new_tokens=max(room, 1))   # none left: check_context says so
    check_context(len(prepared.ids), generation.max_new_tokens, engine.context_window, window_may_cut=window_may_cut)
    handles: list[GenerationHandle] = []
    try:
        with engine_errors_as_api_errors():
            for index in range(copies):
                handles.append(engine.submit(_copy(generation, index), prepared))
    except BaseException:
        for handle in handles:
            handle.cancel()
        raise
    return Started(generation, prepared, handles)


def _copy(generation: GenerationRequest, index: int) -> GenerationRequest:
    """The `index`-th of several samples of one request: with a seed, each its own (seed + index), so they differ
    and the whole set is reproducible."""
    seed = generation.sampling.seed
    if index == 0 or seed is None:
        return generation
    return replace(generation, sampling=replace(generation.sampling, seed=seed + index))


def engine_events(handle: GenerationHandle, client_gone: Callable[[], bool]) -> Iterator[Event | None]:
    """Engine events, with None for every poll interval that passed without one (so callers can ping).
    Cancels the generation when the client is gone or the caller stops iterating. Whether the client is still
    there is asked every poll interval, busy or quiet: on a fast model events never stop long enough to notice."""
    checked = time.monotonic()
    try:
        while True:
            event = handle.next_event(timeout=POLL_S)
            if event is None or time.monotonic() - checked >= POLL_S:
                if client_gone():
                    return
                checked = time.monotonic()
            yield event
            if isinstance(event, (Finished, Failed)):
                return
    finally:
        handle.cancel()    # a no-op after Finished; frees the model when the client went away


def merged_events(handles: list[GenerationHandle],
                  client_gone: Callable[[], bool]) -> Iterator[tuple[int, Event] | None]:
    """The events of several generations of one request (OpenAI's `n`) as they come, each with its handle's index,
    and None for every poll interval that passed without any (so callers can ping). Ends once every generation has
    ended; cancels them all when the client is gone or the caller stops iterating. One handle is `engine_events`."""
    if len(handles) == 1:
        for event in engine_events(handles[0], client_gone):
            yield None if event is None else (0, event)
        return
    live = list(range(len(handles)))
    checked = time.monotonic()
    try:
        while live:
            # Wait a little on the first live generation, then take what the others have ready: the rows decode
            # together, so their events arrive together.
            progressed = False
            for position, index in enumerate(list(live)):
                event = handles[index].next_event(timeout=POLL_S / 10 if position == 0 and not progressed else 0)
                if event is None:
                    continue
                progressed = True
                yield index, event
                if isinstance(event, (Finished, Failed)):
                    live.remove(index)
            if not progressed:
                yield None
            if time.monotonic() - checked >= POLL_S:
                if client_gone():
                    return
                checked = time.monotonic()
    finally:
        for handle in handles:
            handle.cancel()


PING = object()     # from `with_pings`: a ping interval passed with nothing to send


def with_pings(items: Iterator, interval_s: float) -> Iterator:
    """The items of `engine_events` or `merged_events` without their quiet polls (None), and PING in their place
    once `interval_s` has passed since the last thing yielded: a stream writes a keep-alive for it."""
    last = time.monotonic()
    for item in items:
        if item is None:
            if time.monotonic() - last < interval_s:
                continue
            item = PING
        last = time.monotonic()
        yield item


def failure_message(event: Failed) -> str:
    # The step loop's own messages already start so; saying it twice ("generation failed: generation failed: …")
    # is what a real out-of-memory error used to show the client.
    prefix = "generation failed: "
    return event.message if event.message.startswith(prefix) else prefix + event.message
