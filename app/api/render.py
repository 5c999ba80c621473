"""POST /v1/messages/render, a thinkserve extension: the exact prompt string the model sees for a request.

It takes the body of /v1/messages/count_tokens and goes through the same validation, conversion and rendering,
so its `input_tokens` always equals count_tokens (and a real request's `usage.input_tokens`). The playground's
"what the model sees" panel shows it; it is also handy for debugging a chat template.
"""
from __future__ import annotations

from flask import Blueprint

from .http import json_response
from .message_service import prompt_only_request

bp = Blueprint("render", __name__)


@bp.post("/v1/messages/render")
def render_prompt():
    edited = prompt_only_request()
    # An image shows as the chat template's placeholder, where it sits; input_tokens counts its expansion.
    rendered = {"prompt": edited.prepared.text, "input_tokens": edited.input_tokens,
                "images": len(edited.generation.images)}
    if edited.report is not None:
        # What context editing did to reach this prompt: the playground shows it beside the prompt.
        rendered["context_management"] = {**edited.report.count_tokens_json(), **edited.report.response_json()}
    return json_response(rendered)
