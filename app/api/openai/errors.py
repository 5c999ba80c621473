"""The service's errors in OpenAI's envelope: {"error": {"message", "type", "param", "code"}}, with the same HTTP
status the Anthropic side answers (the openai SDK maps statuses to its exception classes: 400 BadRequestError, 401
AuthenticationError, 404 NotFoundError, 5xx retried)."""
from __future__ import annotations

import re

from flask import Blueprint, Response

from ...service.errors import ApiError
from ..http import install_errors, json_response, request_id

# OpenAI's `type` for each kind of failure, and a `code` where OpenAI has one.
TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
         429: "rate_limit_error", 503: "server_error", 529: "server_error"}
CODES = {401: "invalid_api_key", 413: "request_too_large", 529: "overloaded"}
# Our validation messages start with the field at fault ("messages.2.content: ..."): that is OpenAI's `param`.
_PARAM = re.compile(r"^([A-Za-z_][\w]*(?:\.[\w]+)*): ")


def openai_body(error: ApiError) -> dict:
    param = error.param
    if param is None and error.status == 400:
        match = _PARAM.match(error.message)
        param = match[1] if match else None
    code = CODES.get(error.status)
    if error.status == 404 and error.message.startswith("model: "):
        code = "model_not_found"
    return {"error": {"message": error.message, "type": TYPES.get(error.status, "server_error"), "param": param,
                      "code": code}}


def openai_error(error: ApiError) -> Response:
    return json_response(openai_body(error), error.status, {**error.headers, "x-request-id": request_id()})


def openai_blueprint(name: str) -> Blueprint:
    """A blueprint whose errors are written in OpenAI's envelope, and whose every response carries `x-request-id`
    (where the openai SDK reads `_request_id`)."""
    bp = Blueprint(name, __name__)
    install_errors(bp, openai_error)

    @bp.after_request
    def _request_id_header(response: Response) -> Response:
        response.headers["x-request-id"] = request_id()
        return response

    return bp
