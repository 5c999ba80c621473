"""GET /v1/models, GET /v1/models/{id} and GET /health.

One listing that both SDKs read: each model carries Anthropic's fields (`type`, `display_name`, `created_at`, the
token limits) and OpenAI's (`object: "model"`, `created` in Unix seconds, `owned_by`); the page carries Anthropic's
cursor fields, and OpenAI's `object: "list"` for OpenAI clients (`_openai_client`). Anthropic clients also get
`capabilities` (`model_capabilities`); OpenAI clients get the OpenAI shape as it was."""
from __future__ import annotations

from flask import Blueprint, current_app, request

from .errors import InvalidRequestError, NotFoundError
from .http import json_response
from .model_capabilities import capabilities
from .state import ServerState, state

bp = Blueprint("models", __name__)


def model_info(server: ServerState) -> dict:
    engine = server.engine
    info = {"type": "model", "id": engine.model_id, "display_name": engine.model_id,
            "created_at": server.started_at.isoformat().replace("+00:00", "Z"),
            "max_input_tokens": engine.context_window, "max_tokens": engine.context_window,
            "object": "model", "created": int(server.started_at.timestamp()), "owned_by": "thinkserve"}
    if not _openai_client():
        batches = current_app.extensions.get("thinkserve.batches")
        info["capabilities"] = capabilities(accepts_images=engine.accepts_images,
                                            batches=batches is not None and not batches.unavailable)
    return info


def _openai_client() -> bool:
    """The openai SDKs name themselves in User-Agent ("OpenAI/Python 3.63.0", "OpenAI/JS ..."); an Anthropic client
    sends anthropic-version. The Anthropic page's keys are exact (its clients and tests pin them), so the OpenAI
    page key is added only for an OpenAI client; its per-model fields are always there."""
    return (request.headers.get("user-agent", "").lower().startswith("openai/")
            and "anthropic-version" not in request.headers)


def list_limit() -> int:
    """The `limit` query parameter of a list endpoint: 1 to 1000, 20 when absent."""
    raw = request.args.get("limit", "20")
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidRequestError(f"limit: Input should be a valid integer, got {raw!r}") from None
    if not 1 <= limit <= 1000:
        raise InvalidRequestError("limit: Input should be between 1 and 1000")
    return limit


def page(items: list[dict], *, limit: int, after_id: str | None, before_id: str | None) -> dict:
    """Cursor pagination as the SDKs walk it: forward with after_id=last_id, backward with before_id=first_id."""
    ids = [item["id"] for item in items]
    for cursor in (after_id, before_id):
        if cursor is not None and cursor not in ids:
            raise InvalidRequestError(f"no model with id {cursor!r} to page from")
    if after_id is not None:
        start = ids.index(after_id) + 1
        chosen, has_more = items[start:start + limit], start + limit < len(items)
    elif before_id is not None:
        end = ids.index(before_id)
        chosen, has_more = items[max(0, end - limit):end], end - limit > 0
    else:
        chosen, has_more = items[:limit], limit < len(items)
    return {"data": chosen, "has_more": has_more,
            "first_id": chosen[0]["id"] if chosen else None, "last_id": chosen[-1]["id"] if chosen else None}


@bp.get("/v1/models")
def list_models():
    server = state()
    listing = page([model_info(server)], limit=list_limit(), after_id=request.args.get("after_id"),
                   before_id=request.args.get("before_id"))
    return json_response({"object": "list", **listing} if _openai_client() else listing)


@bp.get("/v1/models/<path:model_id>")
def retrieve_model(model_id: str):
    server = state()
    if not server.serves(model_id):
        raise NotFoundError(f"model: {model_id}")
    return json_response(model_info(server))


@bp.get("/health")
def health():
    engine = state().engine
    error = engine.load_error()
    if error:
        return json_response({"status": "error", "model": engine.model_id, "error": error}, 503)
    if not engine.is_ready():
        return json_response({"status": "loading", "model": engine.model_id}, 503)
    # The step loop's figures: rows running and waiting, the prefix cache, requests finished and cancelled.
    return json_response({"status": "ok", "model": engine.model_id, "engine": engine.stats()})
