"""Thinking-block signatures: HMAC-SHA256 over the thinking text, bound to the model, under a server secret.

The secret comes from --signing-key, or is generated once and kept in the data directory, so signatures made
before a restart still verify after it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

VERSION = b"ts1"


def load_or_create_key(signing_key: str, data_dir: str) -> bytes:
    if signing_key:
        return signing_key.encode()
    path = Path(data_dir) / "signing.key"
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    # Create with 0600 atomically; if another process won the race, use its key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


class ThinkingSigner:
    def __init__(self, key: bytes, model_id: str):
        self._key = key
        self._model_id = model_id

    def sign(self, thinking: str) -> str:
        mac = hmac.new(self._key, VERSION + b"\0" + self._model_id.encode() + b"\0" + thinking.encode(),
                       hashlib.sha256).digest()
        return base64.b64encode(VERSION + mac).decode()

    def verify(self, thinking: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(thinking), signature)
