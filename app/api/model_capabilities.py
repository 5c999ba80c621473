"""`capabilities` of a model object (GET /v1/models, /v1/models/{id}), in the shape of the SDK's ModelCapabilities:
every key present, each at least {"supported": bool}, nested where the SDK nests (thinking types, effort levels,
context-management strategies, server tools).

What is true here is read from the code that serves it where it can be: the thinking types and effort levels the
request schema accepts, whether the engine sees images, whether Message Batches are running on this server.
"""
from __future__ import annotations

from typing import get_args

from .schema import EFFORTS, Thinking

# Every thinking.type the SDK knows; the schema decides which of them this server accepts.
THINKING_TYPES = ("adaptive", "between_tools", "disabled", "enabled")
EFFORT_LEVELS = ("low", "medium", "high", "xhigh", "max")
CONTEXT_EDITS = ("clear_thinking_20251015", "clear_tool_uses_20250919", "compact_20260112")
SERVED_CONTEXT_EDITS = ("clear_thinking_20251015", "clear_tool_uses_20250919")


def _support(supported: bool) -> dict:
    return {"supported": bool(supported)}


def capabilities(*, accepts_images: bool, batches: bool) -> dict:
    accepted_thinking = set(get_args(Thinking.model_fields["type"].annotation))
    return {
        "batch": _support(batches),
        "citations": _support(True),
        # Programmatic tool calling from Anthropic's sandbox: there is no sandbox here.
        "code_execution": _support(False),
        "context_management": {"supported": True,
                               **{edit: _support(edit in SERVED_CONTEXT_EDITS) for edit in CONTEXT_EDITS}},
        # output_config.effort sizes adaptive thinking (--effort-budgets).
        "effort": {"supported": True, **{level: _support(level in EFFORTS) for level in EFFORT_LEVELS}},
        "image_input": _support(accepts_images),
        "pdf_input": _support(True),          # PDFs are read as text (pypdf), on every model
        "server_tools": {"supported": False, "code_execution": _support(False), "web_search": _support(False)},
        "structured_outputs": _support(True),   # output_config.format and strict tools, enforced by the grammar
        # Every model thinks: one without native thinking gets prompted thinking, with the same budgets.
        "thinking": {"supported": True,
                     "types": {kind: _support(kind in accepted_thinking) for kind in THINKING_TYPES}},
    }
