"""The Anthropic adapter over the generation service (`app.service.generation`): a Messages body → validated →
converted → started → a Message or its events. The routes (`messages`, `render`) and Message Batches call it;
nothing here is a route, so they import no route module."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..engine.interface import GenerationHandle
from ..engine.request import GenerationRequest
from ..service import generation as service
from ..service.ids import new_id
from ..service.sweep import run_sweep
from ..service.errors import InvalidRequestError
from .citations.assembly import block_assembler
from .context_editing import ContextReport, EditedRequest, edit_and_prepare
from .files import resolve_file_sources
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


def parse_message(server: ServerState, raw: dict, *, background: bool = False
                  ) -> tuple[MessagesRequest, GenerationRequest, EditedRequest]:
    """validate → convert (context_management's edits applied) → prepare. Raises ApiError.

    `background` marks batch work: the engine admits it after interactive requests and never refuses it."""
    body = parse_messages_request(raw, min_thinking_budget=server.config.min_thinking_budget)
    server.check_model(body.model)
    log.info("messages: model=%s max_tokens=%d stream=%s thinking=%s tools=%d background=%s", body.model,
             body.max_tokens, bool(body.stream), body.thinking.type if body.thinking else None,
             len(body.tools or []), background)
    engine = server.ready_engine()          # not ready: 503 before any conversion work
    resolve_file_sources(body, server.files)
    edited = edit_and_prepare(engine, body, server.conversion())
    generation = edited.generation
    if background:
        generation = replace(generation, background=True)
    return body, generation, edited


def start_message(server: ServerState, raw: dict, *, background: bool = False,
                  window_may_cut: bool = False) -> StartedMessage:
    """validate → convert → the service (count, check the context, submit). Raises ApiError.

    `window_may_cut`: the client sent the beta `model-context-window-exceeded-2025-08-26` (see
    `service.generation.check_context`)."""
    return start_parsed(server, *parse_message(server, raw, background=background), window_may_cut=window_may_cut)


def start_parsed(server: ServerState, body: MessagesRequest, generation: GenerationRequest,
                 edited: EditedRequest | None = None, *, window_may_cut: bool = False) -> StartedMessage:
    options = body.thinkserve
    if options is not None and body.stream and (options.n > 1 or options.budget_sweep):
        name = "n" if options.n > 1 else "budget_sweep"
        raise InvalidRequestError(f"thinkserve.{name} is served without streaming (stream: false): the response "
                                  f"holds every answer in thinkserve.{'samples' if name == 'n' else name}")
    started = service.start(server.ready_engine(), generation, copies=options.n if options else 1,
                            prepared=edited.prepared if edited else None, window_may_cut=window_may_cut)
    report = edited.report if edited else None
    parts = [assembled(server, body, generation, started.input_tokens, handle, report) for handle in started.handles]
    return StartedMessage(body, *parts[0], samples=parts)


def assembled(server: ServerState, body: MessagesRequest, generation: GenerationRequest, input_tokens: int,
              handle: GenerationHandle, report: ContextReport | None = None
              ) -> tuple[GenerationHandle, dict, BlockAssembler]:
    """What turns one generation's events into a Message: its handle, the Message's skeleton, the assembler."""
    show_thinking = not (body.thinking and body.thinking.display == "omitted")
    # An omitted thinking text travels inside its signature, so a tool loop can give the model its reasoning back.
    return handle, message_skeleton(new_id("msg_"), body.model, input_tokens), block_assembler(
        input_tokens, citations=generation.citations, show_thinking=show_thinking,
        thinking_expected=generation.thinking is not None,
        sign_thinking=lambda text: server.signer.sign(text, carry_text=not show_thinking),
        marks_cache=body.marks_cache(),
        context_management=report.response_json() if report else None)


def run_message(server: ServerState, raw: dict, *, stop: Callable[[], bool] = lambda: False,
                background: bool = False, on_submit: Callable[[GenerationHandle], None] | None = None,
                window_may_cut: bool = False) -> dict:
    """A non-streaming Messages request: a parsed JSON body in, a Message dict out. Raises ApiError. The HTTP view
    and the batch runner both call it.

    `stop` is asked every poll interval; once it answers True the generation is cancelled and the message comes
    back incomplete (`stop_reason` None). `on_submit` sees the engine handle, e.g. to report progress."""
    body, generation, edited = parse_message(server, raw, background=background)
    if body.thinkserve is not None and body.thinkserve.budget_sweep and not body.stream:
        return run_budget_sweep(server, body, generation, edited, stop)
    started = start_parsed(server, body, generation, edited, window_may_cut=window_may_cut)
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


def run_budget_sweep(server: ServerState, body: MessagesRequest, generation: GenerationRequest,
                     edited: EditedRequest, stop: Callable[[], bool]) -> dict:
    """`thinkserve.budget_sweep`: the largest budget's answer as the Message; every budget's answer (content,
    stop, usage, figures, and how it was made) in `thinkserve.budget_sweep.answers`; the usage of what was
    computed: the prompt once, the tokens the sweep generated."""
    if body.thinkserve.n > 1:
        raise InvalidRequestError("thinkserve.budget_sweep and thinkserve.n do not combine: sweep one sample at a "
                                  "time (each with its own thinkserve.seed)", param="thinkserve.n")
    def collect(handle: GenerationHandle) -> dict:
        return collect_message(*assembled(server, body, generation, edited.input_tokens, handle, edited.report),
                               stop)

    result = run_sweep(server.ready_engine(), generation, body.thinkserve.budget_sweep, collect,
                       answer_tokens=body.thinkserve.sweep_answer_tokens)
    message = dict(next(a.result for a in result.answers if a.source == "trace"))
    message["usage"] = {**message["usage"], "output_tokens": result.generated_tokens}
    message["thinkserve"] = {**message.get("thinkserve", {}), "budget_sweep": {
        "answers": [{"budget_tokens": answer.budget_tokens, "source": answer.source, "forked_at": answer.forked_at,
                     **{key: answer.result[key] for key in ("content", "stop_reason", "stop_sequence", "usage",
                                                             "thinkserve") if key in answer.result}}
                    for answer in result.answers],
        "generated_tokens": result.generated_tokens, "separate_tokens": result.separate_tokens}}
    return message


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


def prompt_only_request() -> EditedRequest:
    """A count_tokens-shaped body (no max_tokens) of the current request, validated, converted (context_management's
    edits applied) and prepared: for count_tokens and render."""
    server = state()
    body = parse_count_tokens_request(request_json())
    server.check_model(body.model)
    engine = server.ready_engine()
    resolve_file_sources(body, server.files)
    return edit_and_prepare(engine, body, server.conversion())

