"""Every error a client can see, in Anthropic's envelope: {"type":"error","error":{"type","message"},"request_id"}.

The classes are the service's (`app.service.errors`), re-exported here for the Anthropic adapter; `ApiError.body`
writes this envelope."""
from __future__ import annotations

from ..service.errors import (ApiError, AuthenticationError, InvalidRequestError, MethodNotAllowedError,
                              NotFoundError, NotReadyError, OverloadedError, RequestTooLargeError, ServerError)

__all__ = ["ApiError", "AuthenticationError", "InvalidRequestError", "MethodNotAllowedError", "NotFoundError",
           "NotReadyError", "OverloadedError", "RequestTooLargeError", "ServerError"]
