"""Random ids for the objects the adapters make: Anthropic's `msg_`, `toolu_`, `req_`; OpenAI's `chatcmpl-`, `call_`."""
from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(24))
