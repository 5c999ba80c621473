"""POST /v1/chat/completions: validate and convert (`schema`, `convert`), run through the generation service, and
answer one `chat.completion` or a stream of `chat.completion.chunk`s ending `data: [DONE]` (`assemble`).

Errors inside this blueprint are written in OpenAI's envelope (`errors`); a failure after a stream has started
travels as a `data: {"error": ...}` line, which the openai SDK raises as an APIError.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

from flask import Response, request

from ...engine.events import Failed, Finished
from ...service import generation as service
from ...service.errors import ServerError
from ..http import json_response, request_json
from ..state import state
from .assemble import ChoiceAssembler, Completion
from .convert import to_generation_request
from .errors import openai_blueprint, openai_body
from .schema import ChatCompletionRequest, parse_chat_request

bp = openai_blueprint("openai")
log = logging.getLogger(__name__)


def _data(payload: dict) -> bytes:
    return f"data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


@bp.post("/v1/chat/completions")
def chat_completions():
    server = state()
    body = parse_chat_request(request_json())
    server.check_model(body.model)
    log.info("chat.completions: model=%s max_tokens=%s stream=%s reasoning=%s tools=%d n=%d", body.model,
             body.max_output_tokens, bool(body.stream), body.reasoning_effort or body.thinking_budget_tokens,
             len(body.tools or []), body.n)
    engine = server.ready_engine()
    cap = body.max_output_tokens
    generation = to_generation_request(body, server.conversion(), max_new_tokens=cap or 1)
    started = service.start(engine, generation, copies=body.n, fill_window=cap is None)
    # waitress tells us when the client has gone, so an abandoned generation frees the model.
    client_gone = request.environ.get("waitress.client_disconnected") or (lambda: False)
    completion = Completion(body.model)
    thinking = generation.thinking is not None
    if not body.stream:
        try:
            return json_response(_collect(started, completion, thinking, client_gone))
        finally:
            started.cancel()      # a no-op once finished; the other choices stop if one failed
    events = _chunks(body, started, completion, thinking, client_gone, server.config.ping_interval)
    response = Response(events, mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(started.cancel)
    return response


def _collect(started: service.Started, completion: Completion, thinking: bool,
             client_gone: Callable[[], bool]) -> dict:
    choices = [ChoiceAssembler(index, thinking=thinking) for index in range(len(started.handles))]
    for choice, handle in zip(choices, started.handles):      # they run together; read one after another
        for event in service.engine_events(handle, client_gone):
            if isinstance(event, Failed):
                raise ServerError(service.failure_message(event))
            if event is not None:
                choice.feed(event)
    return completion.whole(choices)


def _chunks(body: ChatCompletionRequest, started: service.Started, completion: Completion, thinking: bool,
            client_gone: Callable[[], bool], ping_interval_s: float) -> Iterator[bytes]:
    """Each choice's chunks as its events come (with n > 1 they interleave, told apart by `index`); each choice ends
    with its finish_reason chunk, then the usage chunk (include_usage) and [DONE] end the stream."""
    with_usage = bool(body.stream_options and body.stream_options.include_usage)
    choices = [ChoiceAssembler(index, thinking=thinking) for index in range(len(started.handles))]
    for choice in choices:
        yield _data(completion.chunk(choice.index, {"role": "assistant", "content": ""}, usage=with_usage))
    for item in service.with_pings(service.merged_events(started.handles, client_gone), ping_interval_s):
        if item is service.PING:
            yield b": ping\n\n"              # an SSE comment: keeps proxies from closing a quiet stream
            continue
        index, event = item
        if isinstance(event, Failed):
            yield _data(openai_body(ServerError(service.failure_message(event))))
            yield b"data: [DONE]\n\n"
            return          # leaving merged_events cancels the other choices
        choice = choices[index]
        delta = choice.feed(event)
        if delta:
            yield _data(completion.chunk(index, delta, usage=with_usage))
        elif isinstance(event, Finished):
            # The figures are whole only at the end: the choice's logprobs travel on its last chunk.
            last = completion.chunk(index, {}, choice.finish_reason, usage=with_usage, logprobs=choice.logprobs())
            if choice.finished.stats:
                last["choices"][0]["thinkserve"] = choice.figures()
            yield _data(last)
    finished = [choice.finished for choice in choices if choice.finished is not None]
    if len(finished) < len(choices):
        return          # the client went away
    if with_usage:
        yield _data(completion.usage_chunk(finished))
    yield b"data: [DONE]\n\n"
