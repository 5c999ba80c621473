"""POST /v1/messages and POST /v1/messages/count_tokens (the `?beta=true` form too: routing ignores queries)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace

from flask import Blueprint, Response, g, request

from ..engine import errors as engine_errors
from ..engine.interface import Engine, GenerationHandle
from ..engine.prepared import PreparedPrompt
from ..engine.request import GenerationRequest
from .convert import to_generation_request
from .errors import InvalidRequestError, NotReadyError, OverloadedError
from .http import json_response, request_json
from .schema import MessagesRequest, parse_count_tokens_request, parse_messages_request
from .state import ServerState, state
from .stream import BlockAssembler, collect_message, message_skeleton, new_id, sse_stream

bp = Blueprint("messages", __name__)
log = logging.getLogger(__name__)


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


def check_context(input_tokens: int, max_tokens: int, window: int) -> None:
    # Claude Code parses the second message and retries with a smaller max_tokens, so it must read exactly so.
    if input_tokens > window:
        raise InvalidRequestError(f"prompt is too long: {input_tokens} tokens > {window} maximum")
    if input_tokens + max_tokens > window:
        raise InvalidRequestError(f"input length and `max_tokens` exceed context limit: "
                                  f"{input_tokens} + {max_tokens} > {window}, "
                                  f"decrease input length or `max_tokens` and try again")


@dataclass
class StartedMessage:
    """A validated request whose generation is running: what either response shape (SSE or one Message) needs."""
    body: MessagesRequest
    handle: GenerationHandle
    skeleton: dict
    assembler: BlockAssembler


def start_message(server: ServerState, raw: dict, *, background: bool = False) -> StartedMessage:
    """validate → convert → count and check the context → submit. Raises ApiError (the 4xx/5xx a client sees).

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
    prepared = prepare(engine, generation)
    input_tokens = len(prepared.ids)
    check_context(input_tokens, body.max_tokens, engine.context_window)
    with engine_errors_as_api_errors():
        handle = engine.submit(generation, prepared)
    skeleton = message_skeleton(new_id("msg_"), body.model, input_tokens)
    show_thinking = not (body.thinking and body.thinking.display == "omitted")
    # An omitted thinking text travels inside its signature, so a tool loop can give the model its reasoning back.
    assembler = BlockAssembler(input_tokens, show_thinking=show_thinking,
                               thinking_expected=generation.thinking is not None,
                               sign_thinking=lambda text: server.signer.sign(text, carry_text=not show_thinking))
    return StartedMessage(body, handle, skeleton, assembler)


def run_message(server: ServerState, raw: dict, *, stop: Callable[[], bool] = lambda: False,
                background: bool = False, on_submit: Callable[[GenerationHandle], None] | None = None) -> dict:
    """The one service function for a non-streaming Messages request: a parsed JSON body in, a Message dict out.
    Raises ApiError. The HTTP view and the batch runner both call it.

    `stop` is asked every poll interval; once it answers True the generation is cancelled and the message comes
    back incomplete (`stop_reason` None). `on_submit` sees the engine handle, e.g. to report progress."""
    started = start_message(server, raw, background=background)
    if on_submit is not None:
        on_submit(started.handle)
    return collect_message(started.handle, started.skeleton, started.assembler, stop)


@bp.post("/v1/messages")
def create_message():
    server = state()
    raw = request_json()
    # waitress tells us when the client has gone, so an abandoned generation frees the model.
    client_gone = request.environ.get("waitress.client_disconnected") or (lambda: False)
    if raw.get("stream") is not True:
        return json_response(run_message(server, raw, stop=client_gone))
    started = start_message(server, raw)
    events = sse_stream(started.handle, started.skeleton, started.assembler, client_gone,
                        ping_interval_s=server.config.ping_interval, request_id=g.request_id)
    response = Response(events, mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    # The WSGI server closes the response when its client has gone, possibly before the first engine event (the
    # events generator's own cancel is not reached yet then): the generation stops with it, whenever that is.
    response.call_on_close(started.handle.cancel)
    return response


def prompt_only_request() -> tuple[Engine, GenerationRequest]:
    """A count_tokens-shaped body (no max_tokens), validated and converted: for count_tokens and render."""
    server = state()
    body = parse_count_tokens_request(request_json())
    server.check_model(body.model)
    engine = server.ready_engine()
    return engine, to_generation_request(body, server.conversion())


@bp.post("/v1/messages/count_tokens")
def count_tokens():
    engine, generation = prompt_only_request()
    return json_response({"input_tokens": len(prepare(engine, generation).ids)})
