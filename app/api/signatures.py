"""Thinking-block signatures: HMAC-SHA256 over the thinking text, bound to the model, under a server secret.

The secret comes from --signing-key, or is generated once and kept in the data directory, so signatures made
before a restart still verify after it.

With `display: "omitted"` the client gets an empty `thinking` text, yet must be able to send the block back in a
tool loop so the model sees its own reasoning. For those blocks the signature also carries the thinking text
(compressed, and covered by the MAC), and `recover` gives it back.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import zlib
from pathlib import Path

VERSION = b"ts1"
MAC_BYTES = 32


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


class InvalidSignature(ValueError):
    """The thinking text was altered, or the block was not signed by this server for this model."""


class ThinkingSigner:
    def __init__(self, key: bytes, model_id: str):
        self._key = key
        self._model_id = model_id

    def _mac(self, thinking: str) -> bytes:
        return hmac.new(self._key, VERSION + b"\0" + self._model_id.encode() + b"\0" + thinking.encode(),
                        hashlib.sha256).digest()

    def sign(self, thinking: str, *, carry_text: bool = False) -> str:
        payload = zlib.compress(thinking.encode()) if carry_text else b""
        return base64.b64encode(VERSION + self._mac(thinking) + payload).decode()

    def recover(self, thinking: str, signature: str) -> str:
        """The thinking text this signature vouches for: `thinking` itself, or, for a block sent with its text
        omitted (`thinking` empty), the text the signature carries. Raises InvalidSignature otherwise."""
        try:
            raw = base64.b64decode(signature.encode(), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidSignature("the signature is not one this server produced") from None
        if not raw.startswith(VERSION) or len(raw) < len(VERSION) + MAC_BYTES:
            raise InvalidSignature("the signature is not one this server produced")
        mac, payload = raw[len(VERSION):len(VERSION) + MAC_BYTES], raw[len(VERSION) + MAC_BYTES:]
        if payload and not thinking:
            try:
                thinking = zlib.decompress(payload).decode()
            except (zlib.error, UnicodeDecodeError):
                raise InvalidSignature("the signature is damaged") from None
        if not hmac.compare_digest(mac, self._mac(thinking)):
            raise InvalidSignature("the thinking text does not match its signature (it was altered, or signed "
                                   "by another server or for another model)")
        return thinking

    def verify(self, thinking: str, signature: str) -> bool:
        try:
            self.recover(thinking, signature)
        except InvalidSignature:
            return False
        return True
