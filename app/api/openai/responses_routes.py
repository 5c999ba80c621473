"""POST /v1/responses: validate and convert (`responses_schema`, `responses_convert`), run through the generation
service, and answer one `response` object, or its typed stream (`responses_assemble`):

    response.created, response.in_progress,
    per output item: response.output_item.added, [response.content_part.added], deltas
      (response.reasoning_text.delta / response.output_text.delta / response.function_call_arguments.delta),
      their .done, [response.content_part.done], response.output_item.done,
    response.completed (or response.incomplete when max_output_tokens ran out; response.failed when generation
    failed after the stream started).

Each event has an `event:` line naming its type and a `sequence_number` counting from 0. Nothing is stored
(`store` is accepted and answered false; `previous_response_id` is a 400): see the README.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

from flask import Response, request

from ...engine.events import Failed, Finished
from ...service import generation as service
from ...service.errors import InvalidRequestError, NotFoundError, ServerError
from ..http import json_response, request_json
from ..state import state
from .errors import openai_blueprint
from .responses_assemble import OutputAssembler, ResponseObject
from .responses_convert import to_generation_request
from .responses_schema import parse_responses_request

bp = openai_blueprint("openai_responses")
_FIELDS = {"messages": "input", "max_tokens": "max_output_tokens"}
log = logging.getLogger(__name__)


@bp.post("/v1/responses")
def responses():
    server = state()
    body = parse_responses_request(request_json())
    server.check_model(body.model)
    log.info("responses: model=%s max_output_tokens=%s stream=%s effort=%s tools=%d items=%s", body.model,
             body.max_output_tokens, bool(body.stream), body.effort, len(body.tools or []),
             1 if isinstance(body.input, str) else len(body.input))
    if body.hosted_tools():
        log.info("responses: not offered to the model (nothing here runs them): %s", ", ".join(body.hosted_tools()))
    engine = server.ready_engine()
    cap = body.max_output_tokens
    generation = to_generation_request(body, server.conversion(), max_new_tokens=cap or 1)
    try:
        started = service.start(engine, generation, fill_window=cap is None)
    except InvalidRequestError as error:
        # The service names the fields as chat has them; this API's are `input` and `max_output_tokens`.
        error.param = _FIELDS.get(error.param, error.param)
        raise
    # waitress tells us when the client has gone, so an abandoned generation frees the model.
    client_gone = request.environ.get("waitress.client_disconnected") or (lambda: False)
    response = ResponseObject(body)
    if not body.stream:
        try:
            return json_response(_collect(started, response, client_gone))
        finally:
            started.cancel()      # a no-op once finished
    events = _events(started, response, client_gone, server.config.ping_interval)
    streamed = Response(events, mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    streamed.call_on_close(started.cancel)
    return streamed


@bp.route("/v1/responses/<response_id>", methods=["GET", "DELETE"])
@bp.route("/v1/responses/<response_id>/<path:action>", methods=["GET", "POST"])
def stored_response(response_id: str, action: str = ""):
    """Retrieve, delete, cancel, input_items: all of them ask for a kept response, and none is kept."""
    raise NotFoundError(f"response {response_id!r} not found: this server stores no responses (store is always "
                        "false); keep the output you need, and send the whole conversation in input")


def _output(response: ResponseObject) -> OutputAssembler:
    functions = response.request.functions()
    return OutputAssembler({name: f.namespace for name, f in functions.items() if f.namespace})


def _collect(started: service.Started, response: ResponseObject, client_gone: Callable[[], bool]) -> dict:
    output = _output(response)
    for event in service.engine_events(started.handle, client_gone):
        if isinstance(event, Failed):
            raise ServerError(service.failure_message(event))
        if event is not None:
            output.feed(event)
    return response.final(output)


class _Writer:
    """SSE frames, numbered in order: `event: <type>` and `data: {..., "sequence_number": n}`."""

    def __init__(self):
        self.sequence = 0

    def frame(self, event: dict) -> bytes:
        payload = {**event, "sequence_number": self.sequence}
        self.sequence += 1
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        return f"event: {event['type']}\ndata: {data}\n\n".encode()


def _events(started: service.Started, response: ResponseObject, client_gone: Callable[[], bool],
            ping_interval_s: float) -> Iterator[bytes]:
    writer, output = _Writer(), _output(response)
    yield writer.frame({"type": "response.created", "response": response.snapshot("in_progress")})
    yield writer.frame({"type": "response.in_progress", "response": response.snapshot("in_progress")})
    for event in service.with_pings(service.engine_events(started.handle, client_gone), ping_interval_s):
        if event is service.PING:
            yield b": ping\n\n"              # an SSE comment: keeps proxies from closing a quiet stream
            continue
        if isinstance(event, Failed):
            error = {"code": "server_error", "message": service.failure_message(event)}
            output.cut_off()
            yield writer.frame({"type": "response.failed",
                                "response": response.snapshot("failed", output, error=error)})
            return
        for item in output.feed(event):
            yield writer.frame(item)
        if isinstance(event, Finished):
            final = response.final(output)
            kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
            yield writer.frame({"type": kind, "response": final})
