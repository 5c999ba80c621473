"""What every request goes through: a request id, the body limit, authentication, JSON parsing, and the one
error handler that turns every failure into Anthropic's envelope."""
from __future__ import annotations

import hmac
import json
import logging
import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from .errors import (ApiError, AuthenticationError, InvalidRequestError, MethodNotAllowedError, NotFoundError,
                     RequestTooLargeError, ServerError)
from .stream import new_id

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


def _error_response(error: ApiError) -> Response:
    return json_response(error.body(g.get("request_id") or new_id("req_")), error.status, error.headers)


def install(app: Flask, *, api_key: str, max_request_bytes: int, limits_by_path: dict[str, int] | None = None) -> None:
    """`limits_by_path` raises the body limit on the paths named (a Message Batch may be 256 MB)."""
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

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return _error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if error.code == 404:
            return _error_response(NotFoundError(f"no route for {request.method} {request.path}"))
        if error.code == 405:
            return _error_response(MethodNotAllowedError(f"{request.method} is not allowed on {request.path}"))
        if error.code == 413:
            return _error_response(RequestTooLargeError(f"request body is larger than {body_limit()} bytes"))
        mapped = InvalidRequestError(error.description or error.name) if error.code and error.code < 500 \
            else ServerError(error.description or error.name)
        mapped.status = error.code or 500
        return _error_response(mapped)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unhandled error in %s %s", request.method, request.path)
        return _error_response(ServerError(f"internal server error: {type(error).__name__}"))
