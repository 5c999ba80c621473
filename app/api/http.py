"""What every request goes through: a request id, the body limit, authentication, JSON parsing, and the error
handlers that turn every failure into a protocol's envelope: Anthropic's app-wide (also for a path no route
matches), OpenAI's on its own blueprint and under its paths (`install_errors`, `install(envelopes_by_prefix=)`)."""
from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable

from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from ..service.ids import new_id
from .errors import (ApiError, AuthenticationError, InvalidRequestError, MethodNotAllowedError, NotFoundError,
                     RequestTooLargeError, ServerError)

log = logging.getLogger(__name__)


def json_response(payload: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), status=status, headers=headers or {},
                    mimetype="application/json")


def request_json() -> dict:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    raw = request.get_data(cache=False)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        # json's decoder recurses once per level: 100k nested arrays would otherwise be a 500.
        raise InvalidRequestError("request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("request body must be a JSON object")
    if b"\\u" in raw and _has_lone_surrogate(body):
        raise InvalidRequestError("request body is not valid JSON: a string holds a lone UTF-16 surrogate "
                                  "(an unpaired \\ud800-\\udfff escape), which is not Unicode text")
    return body


def _has_lone_surrogate(value) -> bool:
    """JSON may escape a lone surrogate (\\ud800); Python decodes it into a str that cannot be encoded as UTF-8,
    so the response (or the tokenizer) would fail later with a 500. Walked without recursion: bodies nest deep."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _credential() -> str | None:
    if "x-api-key" in request.headers:
        return request.headers["x-api-key"]
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _check_api_key(api_key: str) -> None:
    given = _credential()
    if given is None:
        raise AuthenticationError("x-api-key header is required")
    if not hmac.compare_digest(given.encode(), api_key.encode()):
        raise AuthenticationError("invalid x-api-key")


# Writes an error in one protocol's envelope.
ErrorWriter = Callable[[ApiError], Response]


def request_id() -> str:
    return g.get("request_id") or new_id("req_")


def anthropic_error(error: ApiError) -> Response:
    return json_response(error.body(request_id()), error.status, error.headers)


def as_api_error(error: HTTPException) -> ApiError:
    """A werkzeug error (routing, the body limit, a bad method) as the service's error it stands for."""
    if error.code == 404:
        return NotFoundError(f"no route for {request.method} {request.path}")
    if error.code == 405:
        return MethodNotAllowedError(f"{request.method} is not allowed on {request.path}")
    if error.code == 413:
        limit = current_app.extensions["body_limit_for"](request.path)
        return RequestTooLargeError(f"request body is larger than {limit} bytes")
    mapped = InvalidRequestError(error.description or error.name) if error.code and error.code < 500 \
        else ServerError(error.description or error.name)
    mapped.status = error.code or 500
    return mapped


def install_errors(target: Flask | Blueprint, write: ErrorWriter) -> None:
    """Every failure inside `target` (an app, or one protocol's blueprint) written by `write`."""
    target.register_error_handler(ApiError, write)
    target.register_error_handler(HTTPException, lambda error: write(as_api_error(error)))

    def unexpected(error: Exception):
        log.exception("unhandled error in %s %s", request.method, request.path)
        return write(ServerError(f"internal server error: {type(error).__name__}"))

    target.register_error_handler(Exception, unexpected)


def install(app: Flask, *, api_key: str, max_request_bytes: int, limits_by_path: dict[str, int] | None = None,
            envelopes_by_prefix: dict[str, ErrorWriter] | None = None) -> None:
    """`limits_by_path` raises the body limit on the paths named (a Message Batch may be 256 MB).
    `envelopes_by_prefix` writes the errors of the requests under a path prefix that no blueprint handles (an
    unknown path, a method not allowed) in another protocol's envelope; all others get Anthropic's."""
    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes
    limits = dict(limits_by_path or {})

    def limit_for(path: str) -> int:
        return limits.get(path, max_request_bytes)

    def body_limit() -> int:
        return limit_for(request.path)

    # The server refuses an oversized body from its headers with this too (app/wsgi_server.py).
    app.extensions["body_limit_for"] = limit_for

    @app.before_request
    def _before():
        g.request_id = new_id("req_")
        g.started = time.monotonic()
        limit = request.max_content_length = body_limit()    # also bounds a body sent without Content-Length
        if request.content_length is not None and request.content_length > limit:
            raise RequestTooLargeError(f"request body is {request.content_length} bytes; the limit is {limit}")
        if api_key and request.path.startswith("/v1/"):
            _check_api_key(api_key)

    @app.after_request
    def _after(response: Response):
        response.headers["request-id"] = g.get("request_id") or new_id("req_")
        # For a stream this is when headers go out; the step loop logs the generation itself when it ends.
        log.info("%s %s -> %d in %.0f ms (%s)", request.method, request.full_path.rstrip("?"), response.status_code,
                 (time.monotonic() - g.get("started", time.monotonic())) * 1000, response.headers["request-id"])
        return response

    prefixes = dict(envelopes_by_prefix or {})

    def by_path(error: ApiError) -> Response:
        for prefix, write in prefixes.items():
            if request.path.startswith(prefix):
                return write(error)
        return anthropic_error(error)

    install_errors(app, by_path)
