"""Random ids for the objects the adapters make: Anthropic's `msg_`, `toolu_`, `req_`; OpenAI's `chatcmpl-`, `call_`."""
from __future__ import annotations

import secrets
import string
from collections.abc import Callable

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def figures_with_call_ids(stats: dict, call_id: Callable[[str], str]) -> dict:
    """The engine's research figures with its call ids (24 letters and digits, no protocol's prefix) written as
    one API writes them (`call_id`), so `tool_input_errors` name the call that API's client saw."""
    errors = stats.get("tool_input_errors")
    if not errors:
        return stats
    return {**stats, "tool_input_errors": [{**error, "id": call_id(error["id"])} if isinstance(error, dict)
                                           and isinstance(error.get("id"), str) else error for error in errors]}
