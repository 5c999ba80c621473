"""Files on the wire: the `file` metadata object, what an upload's MIME type and filename become, and the two
errors the SDKs know by their `error.details.error_code` (`file_not_downloadable`, `file_expired`)."""
from __future__ import annotations

import mimetypes
from datetime import datetime, timezone
from pathlib import PurePosixPath

from ...service.file_store import FileRecord
from ..errors import InvalidRequestError, NotFoundError

# Anthropic's bounds on `expires_in_seconds`: one hour to ninety days.
MIN_EXPIRY_S, MAX_EXPIRY_S = 3600, 90 * 24 * 3600
GENERIC_MIME_TYPE = "application/octet-stream"
# Magic bytes of the types a message can use, for an upload whose part says neither its type nor a telling name.
SIGNATURES = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
              (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))


def file_object(record: FileRecord) -> dict:
    """The `file` metadata object; `expires_at` only for a file uploaded with `expires_in_seconds`."""
    return {"id": record.id, "type": "file", "filename": record.filename, "mime_type": record.mime_type,
            "size_bytes": record.size_bytes, "created_at": rfc3339(record.created_at),
            "downloadable": record.downloadable,
            **({"expires_at": rfc3339(record.expires_at)} if record.expires_at is not None else {})}


def rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat().replace("+00:00", "Z")


def mime_type_of(declared: str | None, filename: str, head: bytes) -> str:
    """The part's own Content-Type (its essence: lower case, no parameters) unless it is missing or generic;
    then what the filename's extension says; then what the first bytes say."""
    essence = (declared or "").split(";")[0].strip().lower()
    if essence and essence != GENERIC_MIME_TYPE:
        return essence
    guessed = mimetypes.guess_type(filename)[0] if filename else None
    if guessed:
        return guessed
    for magic, mime_type in SIGNATURES:
        if head.startswith(magic):
            return mime_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return GENERIC_MIME_TYPE


def stored_filename(given: str | None, mime_type: str) -> str:
    """As Anthropic stores it: only the final path component of the part's filename (a client's directories are
    none of the server's business); an absent or empty one becomes `unnamed` plus the type's extension."""
    name = PurePosixPath((given or "").replace("\\", "/")).name.strip()
    if name and name not in (".", ".."):
        return name
    return "unnamed" + (mimetypes.guess_extension(mime_type) or "")


def expiry_seconds(raw: str | None) -> int | None:
    """The upload's optional `expires_in_seconds` form field."""
    if raw is None or raw == "":
        return None
    try:
        seconds = int(raw)
    except ValueError:
        raise InvalidRequestError(f"expires_in_seconds: Input should be a valid integer, got {raw!r}") from None
    if not MIN_EXPIRY_S <= seconds <= MAX_EXPIRY_S:
        raise InvalidRequestError(f"expires_in_seconds: must be between {MIN_EXPIRY_S} (one hour) and "
                                  f"{MAX_EXPIRY_S} (ninety days), not {seconds}")
    return seconds


class _WithErrorCode:
    """Anthropic names the cause of some errors in `error.details.error_code`; the SDKs raise a typed exception
    for it (anthropic.FileNotDownloadableError, for one)."""
    error_code = ""

    def body(self, request_id: str) -> dict:
        body = super().body(request_id)
        body["error"]["details"] = {"error_code": self.error_code}
        return body


class FileNotDownloadableError(_WithErrorCode, InvalidRequestError):
    error_code = "file_not_downloadable"


class FileExpiredError(_WithErrorCode, NotFoundError):
    error_code = "file_expired"
