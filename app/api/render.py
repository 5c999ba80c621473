"""POST /v1/messages/render, a thinkserve extension: the exact prompt string the model sees for a request.

It takes the body of /v1/messages/count_tokens and goes through the same validation, conversion and rendering,
so its `input_tokens` always equals count_tokens (and a real request's `usage.input_tokens`). The playground's
"what the model sees" panel shows it; it is also handy for debugging a chat template.
"""
from __future__ import annotations

from flask import Blueprint

from .http import json_response
from .messages import count_prompt_tokens, engine_errors_as_api_errors, prompt_only_request

bp = Blueprint("render", __name__)


@bp.post("/v1/messages/render")
def render_prompt():
    engine, generation = prompt_only_request()
    with engine_errors_as_api_errors():
        prompt = engine.render_prompt(generation)
    return json_response({"prompt": prompt, "input_tokens": count_prompt_tokens(engine, generation)})
