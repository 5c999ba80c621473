"""Anthropic's context editing (beta `context-management-2025-06-27`): `clear_tool_uses_20250919` and
`clear_thinking_20251015`, applied to a request's messages before the model reads them.

`config` validates the request's `context_management`; `clearing` edits the messages; `editor` applies the edits
in order against the engine's token counts and reports what it did (`ContextReport`)."""
from __future__ import annotations

from .editor import ContextReport, EditedRequest, edit_and_prepare

__all__ = ["ContextReport", "EditedRequest", "edit_and_prepare"]
