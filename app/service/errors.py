"""The failures a client can see, as facts: an HTTP status, a kind, a message, and (when known) the request field at
fault. Each protocol writes them in its own envelope: Anthropic's in `app.api.errors`, OpenAI's in
`app.api.openai.errors`. The kind names are Anthropic's, the first protocol served; adapters map them."""
from __future__ import annotations


class ApiError(Exception):
    status = 500
    error_type = "api_error"

    def __init__(self, message: str, *, headers: dict | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.param = param          # the request field at fault (OpenAI's `param`), when the raiser knows it

    def body(self, request_id: str) -> dict:
        """Anthropic's envelope, {"type": "error", "error": {"type", "message"}, "request_id"}: kept on the class
        because the Messages API, Message Batches and SSE error events all write it."""
        return {"type": "error", "error": {"type": self.error_type, "message": self.message},
                "request_id": request_id}


class InvalidRequestError(ApiError):
    status, error_type = 400, "invalid_request_error"


class AuthenticationError(ApiError):
    status, error_type = 401, "authentication_error"


class NotFoundError(ApiError):
    status, error_type = 404, "not_found_error"


class MethodNotAllowedError(ApiError):
    # Anthropic has no dedicated type for 405; invalid_request_error is what its API answers.
    status, error_type = 405, "invalid_request_error"


class RequestTooLargeError(ApiError):
    status, error_type = 413, "request_too_large"


class ServerError(ApiError):
    status, error_type = 500, "api_error"


class NotReadyError(ApiError):
    # 503 is retried by every SDK, which is what a client should do while the model loads.
    status, error_type = 503, "api_error"


class OverloadedError(ApiError):
    status, error_type = 529, "overloaded_error"

    def __init__(self, message: str, retry_after_s: int = 1):
        super().__init__(message, headers={"retry-after": str(retry_after_s),
                                           "retry-after-ms": str(retry_after_s * 1000)})
