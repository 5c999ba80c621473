"""POST /v1/messages and POST /v1/messages/count_tokens (the `?beta=true` form too: routing ignores queries).

Routes only: the Anthropic adapter over the generation service is `message_service`."""
from __future__ import annotations

from flask import Blueprint, Response, g, request

from .http import json_response, request_json
from .message_service import prompt_only_request, run_message, start_message
from .state import state
from .stream import sse_stream

bp = Blueprint("messages", __name__)
WINDOW_BETA = "model-context-window-exceeded-2025-08-26"


@bp.post("/v1/messages")
def create_message():
    server = state()
    raw = request_json()
    # waitress tells us when the client has gone, so an abandoned generation frees the model.
    client_gone = request.environ.get("waitress.client_disconnected") or (lambda: False)
    # Anthropic's beta: max_tokens may reach past the context window; the output then stops where the window is
    # full, with stop_reason model_context_window_exceeded (without it, such a request is a 400).
    window_may_cut = WINDOW_BETA in request.headers.get("anthropic-beta", "")
    if raw.get("stream") is not True:
        return json_response(run_message(server, raw, stop=client_gone, window_may_cut=window_may_cut))
    started = start_message(server, raw, window_may_cut=window_may_cut)
    events = sse_stream(started.handle, started.skeleton, started.assembler, client_gone,
                        ping_interval_s=server.config.ping_interval, request_id=g.request_id)
    response = Response(events, mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    # The WSGI server closes the response when its client has gone, possibly before the first engine event (the
    # events generator's own cancel is not reached yet then): the generation stops with it, whenever that is.
    response.call_on_close(started.handle.cancel)
    return response


@bp.post("/v1/messages/count_tokens")
def count_tokens():
    edited = prompt_only_request()
    counted = {"input_tokens": edited.input_tokens}
    if edited.report is not None:      # context editing: input_tokens after the edits, and before them
        counted["context_management"] = edited.report.count_tokens_json()
    return json_response(counted)
