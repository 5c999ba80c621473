"""The waitress server `thinkserve serve` runs, with one addition: an oversized body is refused from its headers.

waitress reads a whole request body (spooling it to a temporary file) before it calls the app, so the app's own
413 would come only after a client had sent all of its 300 MB. Here the parser checks Content-Length against the
path's limit as soon as the headers are in, and answers 413 in Anthropic's envelope without reading the body.
"""
from __future__ import annotations

import json
from collections.abc import Callable

import waitress
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.utilities import RequestEntityTooLarge

from .api.errors import RequestTooLargeError
from .service.ids import new_id


class EnvelopeTooLarge(RequestEntityTooLarge):
    """waitress's 413, written as the app writes every error (waitress's own is text/plain)."""

    def __init__(self, limit: int, length: int | None = None):
        super().__init__(f"request body is {length} bytes; the limit is {limit}" if length
                         else f"request body is larger than {limit} bytes")

    def to_response(self, ident=None):
        request_id = new_id("req_")
        body = json.dumps(RequestTooLargeError(self.body).body(request_id)).encode()
        return (f"{self.code} {self.reason}",
                [("Content-Type", "application/json"), ("request-id", request_id)], body)


def early_limit_parser(limit_for: Callable[[str], int]) -> type[HTTPRequestParser]:
    """An HTTPRequestParser that refuses a declared Content-Length above `limit_for(path)` once headers parse."""

    class EarlyLimitParser(HTTPRequestParser):
        def parse_header(self, header_plus):
            super().parse_header(header_plus)
            limit = limit_for(self.path)
            if self.content_length > limit:
                self.error = EnvelopeTooLarge(limit, self.content_length)
                self.completed = True    # waitress answers at once and closes; the body is never read

        def received(self, data):
            consumed = super().received(data)
            # waitress's own max_request_body_size check (past 1 GB, or a chunked body) says it in text/plain.
            if isinstance(self.error, RequestEntityTooLarge) and not isinstance(self.error, EnvelopeTooLarge):
                self.error = EnvelopeTooLarge(limit_for(self.path), self.content_length)
            return consumed

    return EarlyLimitParser


def create_server(app, *, limit_for: Callable[[str], int], **options):
    """`waitress.create_server(app, **options)`, whose connections use the early body limit."""
    server = waitress.create_server(app, **options)
    channel = type("EarlyLimitChannel", (HTTPChannel,), {"parser_class": early_limit_parser(limit_for)})
    # A host that resolves to several addresses gets one listener each, all in the server's socket map.
    listeners = getattr(server, "map", None) or server._map
    for listener in list(listeners.values()):
        if hasattr(listener, "channel_class"):
            listener.channel_class = channel
    return server
