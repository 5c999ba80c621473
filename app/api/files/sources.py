"""`{"type": "file", "file_id"}` sources of document and image blocks → the inline source the file stands for.

Done on the validated request before conversion, so a file takes exactly the path its bytes would take inline: a
PDF becomes a base64 PDF document, a text/plain file a text document, an image a base64 image (with every check
and limit of those paths). The source keeps its `file_id`, for whoever wants to name the file (citations do).
It runs whenever a request is converted: for a Message Batch, when the request runs, so a file deleted while its
batch waits makes that request end `errored` with the 400 below.
"""
from __future__ import annotations

import base64
import time

from ...service.file_store import FileStore
from ..documents import PDF_MEDIA_TYPE, TEXT_MEDIA_TYPE
from ..errors import InvalidRequestError
from ..images import MEDIA_TYPES as IMAGE_MEDIA_TYPES


def resolve_file_sources(request, files: FileStore | None) -> None:
    """Replace, in place, every file source in `request` (a validated Messages or count_tokens body): in the
    messages' blocks and in the blocks of their tool_result contents. A missing file is a 400 naming it."""
    now = time.time()
    for i, message in enumerate(request.messages):
        for j, block in enumerate(message.content):
            path = f"messages.{i}.content.{j}"
            _resolve(block, path, files, now)
            if block.type == "tool_result" and isinstance(block.content, list):
                for k, part in enumerate(block.content):
                    _resolve(part, f"{path}.content.{k}", files, now)


def _resolve(block, path: str, files: FileStore | None, now: float) -> None:
    source = getattr(block, "source", None)
    if block.type not in ("document", "image") or not isinstance(source, dict) or source.get("type") != "file":
        return
    file_id = source.get("file_id")
    if not isinstance(file_id, str) or not file_id:
        raise InvalidRequestError(f"{path}.source.file_id: Field required (a string, the id POST /v1/files gave)")
    record = files.get(file_id) if files is not None else None
    if record is not None and record.expired(now):
        raise InvalidRequestError(f"{path}.source.file_id: file {file_id} has expired: its content is no longer "
                                  "available")
    data = files.read(record) if record is not None else None      # None too if deleted since the get
    if data is None:
        raise InvalidRequestError(f"{path}.source.file_id: file {file_id} not found: it was never uploaded to this "
                                  "server, or it has been deleted")
    if block.type == "document":
        block.source = _document_source(data, record.mime_type, file_id, path)
    else:
        block.source = _image_source(data, record.mime_type, file_id, path)


def _document_source(data: bytes, mime_type: str, file_id: str, path: str) -> dict:
    if mime_type == PDF_MEDIA_TYPE:
        return {"type": "base64", "media_type": PDF_MEDIA_TYPE, "data": base64.b64encode(data).decode("ascii"),
                "file_id": file_id}
    if mime_type == TEXT_MEDIA_TYPE:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequestError(f"{path}.source.file_id: file {file_id} is text/plain but not UTF-8 "
                                      "text") from None
        return {"type": "text", "media_type": TEXT_MEDIA_TYPE, "data": text, "file_id": file_id}
    raise InvalidRequestError(f"{path}.source.file_id: file {file_id} is {mime_type}; a document block takes an "
                              f"{PDF_MEDIA_TYPE} or {TEXT_MEDIA_TYPE} file (an image file goes in an image block)")


def _image_source(data: bytes, mime_type: str, file_id: str, path: str) -> dict:
    if mime_type not in IMAGE_MEDIA_TYPES:
        raise InvalidRequestError(f"{path}.source.file_id: file {file_id} is {mime_type}; an image block takes a "
                                  f"file of one of {', '.join(IMAGE_MEDIA_TYPES)}")
    return {"type": "base64", "media_type": mime_type, "data": base64.b64encode(data).decode("ascii"),
            "file_id": file_id}
