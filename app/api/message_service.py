"""The Anthropic adapter over the generation service (`app.service.generation`): a Messages body → validated →
converted → started → a Message or its events. The routes (`messages`, `render`) and Message Batches call it;
nothing here is a route, so they import no route module."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..engine.interface import Engine, GenerationHandle
from ..engine.request import GenerationRequest
from ..service import generation as service
from ..service.ids import new_id
from ..service.errors import InvalidRequestError
from .convert import to_generation_request
from .http import request_json
from .schema import MessagesRequest, parse_count_tokens_request, parse_messages_request
from .state import ServerState, state
from .stream import BlockAssembler, collect_message, message_skeleton

log = logging.getLogger(__name__)


@dataclass
class StartedMessage:
    """A validated request whose generation is running: what either response shape (SSE or one Message) needs.
    With `thinkserve.n`, `samples` holds a (handle, skeleton, assembler) for every sample, the first included."""
    body: MessagesRequest
    handle: GenerationHandle
    skeleton: dict
    assembler: BlockAssembler
    samples: list[tuple[GenerationHandle, dict, BlockAssembler]]


def start_message(server: ServerState, raw: dict, *, background: bool = False) -> StartedMessage:
    """validate → convert → the service (count, check the context, submit). Raises ApiError.

    `background` marks batch work: the engine admits it after interactive requests and never refuses it."""
    body = parse_messages_request(raw, min_thinking_budget=server.config.min_thinking_budget)
    server.check_model(body.model)
    log.info("messages: model=%s max_tokens=%d stream=%s thinking=%s tools=%d background=%s", body.model,
             body.max_tokens, bool(body.stream), body.thinking.type if body.thinking else None,
             len(body.tools or []), background)
    engine = server.ready_engine()
    generation = to_generation_request(body, server.conversion())
    if background:
        generation = replace(generation, background=True)
    samples = body.thinkserve.n if body.thinkserve else 1
    if samples > 1 and body.stream:
        raise InvalidRequestError("thinkserve.n: samples are served without streaming (stream: false); the "
                                  "response holds them all in thinkserve.samples")
    started = service.start(engine, generation, copies=samples)
    show_thinking = not (body.thinking and body.thinking.display == "omitted")

    def assembled(handle: GenerationHandle) -> tuple[GenerationHandle, dict, BlockAssembler]:
        # An omitted thinking text travels inside its signature, so a tool loop can give the model its reasoning
        # back.
        return handle, message_skeleton(new_id("msg_"), body.model, started.input_tokens), BlockAssembler(
            started.input_tokens, show_thinking=show_thinking, thinking_expected=generation.thinking is not None,
            sign_thinking=lambda text: server.signer.sign(text, carry_text=not show_thinking))

    parts = [assembled(handle) for handle in started.handles]
    return StartedMessage(body, *parts[0], samples=parts)


def run_message(server: ServerState, raw: dict, *, stop: Callable[[], bool] = lambda: False,
                background: bool = False, on_submit: Callable[[GenerationHandle], None] | None = None) -> dict:
    """A non-streaming Messages request: a parsed JSON body in, a Message dict out. Raises ApiError. The HTTP view
    and the batch runner both call it.

    `stop` is asked every poll interval; once it answers True the generation is cancelled and the message comes
    back incomplete (`stop_reason` None). `on_submit` sees the engine handle, e.g. to report progress."""
    started = start_message(server, raw, background=background)
    if on_submit is not None:
        on_submit(started.handle)
    if len(started.samples) == 1:
        return collect_message(started.handle, started.skeleton, started.assembler, stop)
    try:
        messages = [collect_message(*sample, stop) for sample in started.samples]
    finally:
        for handle, _, _ in started.samples:
            handle.cancel()             # a no-op once finished; the others stop if one failed
    return with_samples(messages)


def with_samples(messages: list[dict]) -> dict:
    """The first sample as the Message, every sample (content, stop, usage, figures) in `thinkserve.samples`, and
    the usage of all: the prompt counted once, the output tokens summed."""
    first = dict(messages[0])
    first["thinkserve"] = {**first.get("thinkserve", {}), "samples": [
        {key: message[key] for key in ("content", "stop_reason", "stop_sequence", "usage", "thinkserve")
         if key in message} for message in messages]}
    first["usage"] = {**first["usage"],
                      "output_tokens": sum(message["usage"]["output_tokens"] for message in messages)}
    return first


def prompt_only_request() -> tuple[Engine, GenerationRequest]:
    """A count_tokens-shaped body (no max_tokens) of the current request, validated and converted: for count_tokens
    and render."""
    server = state()
    body = parse_count_tokens_request(request_json())
    server.check_model(body.model)
    engine = server.ready_engine()
    return engine, to_generation_request(body, server.conversion())

