"""OpenAI-compatible endpoints, adapters over the same generation service as the Anthropic ones:
`POST /v1/chat/completions` (`routes`) and `POST /v1/responses` (`responses_routes`), each with OpenAI's error
envelope (`errors`) and the conversion pieces they share (`common`). `GET /v1/models` is one listing both SDKs
read (`app.api.models`)."""
from __future__ import annotations

from flask import Flask

from . import responses_routes, routes
from .errors import openai_error

__all__ = ["PREFIXES", "install", "openai_error"]

# Paths whose errors are OpenAI's even where no route matched (an unknown /v1/chat/... path, a wrong method).
PREFIXES = ("/v1/chat/", "/v1/completions", "/v1/responses", "/v1/embeddings")


def install(app: Flask) -> None:
    app.register_blueprint(routes.bp)
    app.register_blueprint(responses_routes.bp)
