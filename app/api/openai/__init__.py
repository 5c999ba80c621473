"""OpenAI-compatible endpoints, an adapter over the same generation service as the Anthropic ones:
`POST /v1/chat/completions` (`routes`), with OpenAI's error envelope (`errors`). `GET /v1/models` is one listing
both SDKs read (`app.api.models`)."""
from __future__ import annotations

from flask import Flask

from .errors import openai_error
from .routes import bp

# Paths whose errors are OpenAI's even where no route matched (an unknown /v1/chat/... path, a wrong method).
__all__ = ["PREFIXES", "bp", "install", "openai_error"]

PREFIXES = ("/v1/chat/", "/v1/completions", "/v1/responses", "/v1/embeddings")


def install(app: Flask) -> None:
    app.register_blueprint(bp)
