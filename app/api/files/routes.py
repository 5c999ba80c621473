"""/v1/files: upload (multipart `file`), list, metadata, content, delete, as the SDKs' `client.files` and
`client.beta.files` call them. The `anthropic-beta: files-api-2025-04-14` header is accepted, not required."""
from __future__ import annotations

import time

from flask import Blueprint, current_app, request, send_file

from ...service.file_store import FileRecord, FileStore, FileTooLargeError
from ...service.ids import new_id
from ..errors import InvalidRequestError, NotFoundError, RequestTooLargeError
from ..http import json_response
from ..models import list_limit
from ..state import state
from .objects import (FileExpiredError, FileNotDownloadableError, expiry_seconds, file_object, mime_type_of,
                      stored_filename)

bp = Blueprint("files", __name__)
PAGE_PREFIX = "page_"      # the opaque `page` cursor the SDKs pass back: here, the last file id of a page
MAX_IDS = 100


def store() -> FileStore:
    return current_app.extensions["thinkserve.files"]


def _existing(file_id: str) -> FileRecord:
    record = store().get(file_id)
    if record is None:
        raise NotFoundError(f"file {file_id!r} not found")
    return record


@bp.post("/v1/files")
def upload_file():
    upload = request.files.get("file")
    if upload is None:
        raise InvalidRequestError("file: Field required (send the file as the multipart/form-data part `file`)")
    expires_in = expiry_seconds(request.form.get("expires_in_seconds"))
    max_bytes = state().config.max_file_bytes
    try:
        staged = store().stage(upload.stream, max_bytes=max_bytes)
    except FileTooLargeError:
        raise RequestTooLargeError(f"file: the file is larger than {max_bytes} bytes, the largest this server "
                                   f"accepts (--max-file-bytes)") from None
    mime_type = mime_type_of(upload.mimetype, upload.filename or "", staged.head)
    now = time.time()
    record = store().add(staged, file_id=new_id("file_"), filename=stored_filename(upload.filename, mime_type),
                         mime_type=mime_type, now=now, expires_at=now + expires_in if expires_in else None)
    return json_response(file_object(record))


@bp.get("/v1/files")
def list_files():
    ids = _ids_filter()
    if ids is not None:
        if "limit" in request.args or "page" in request.args:
            raise InvalidRequestError("ids: cannot be combined with page or limit")
        records, has_more, older = store().with_ids(ids), False, False
    else:
        records, has_more, older = _page()
    data = [file_object(record) for record in records]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return json_response({"data": data, "has_more": has_more, "first_id": first, "last_id": last,
                          "next_page": PAGE_PREFIX + last if older else None})


def _ids_filter() -> list[str] | None:
    """`ids` as the SDK sends a list (`ids[]=a&ids[]=b`), repeated, or comma-separated; None when absent."""
    raw = request.args.getlist("ids[]") + request.args.getlist("ids")
    if not raw:
        return None
    ids = list(dict.fromkeys(part.strip() for value in raw for part in value.split(",") if part.strip()))
    if len(ids) > MAX_IDS:
        raise InvalidRequestError(f"ids: at most {MAX_IDS} ids are allowed, got {len(ids)}")
    return ids


def _page() -> tuple[list[FileRecord], bool, bool]:
    """A page by `after_id` / `before_id` (Anthropic's cursors) or `page` (the SDK's opaque one); and whether
    more lie beyond it in its direction, and whether older files lie beyond its last one (the SDK's next page)."""
    after_id, before_id, page = request.args.get("after_id"), request.args.get("before_id"), request.args.get("page")
    if sum(cursor is not None for cursor in (after_id, before_id, page)) > 1:
        raise InvalidRequestError("after_id, before_id and page cannot be used together")
    if page is not None:
        if not page.startswith(PAGE_PREFIX):
            raise InvalidRequestError(f"page: {page!r} is not a page cursor this server gave")
        after_id = page.removeprefix(PAGE_PREFIX)
    found = store().list(limit=list_limit(), after_id=after_id, before_id=before_id)
    if found is None:
        name = "page" if page is not None else "after_id" if after_id is not None else "before_id"
        raise InvalidRequestError(f"{name}: no file with id {after_id or before_id!r} to page from")
    records, has_more = found
    # Going back from before_id, the cursor file itself is older than the page.
    older = has_more if before_id is None else bool(records)
    return records, has_more, older


@bp.get("/v1/files/<file_id>")
def retrieve_file(file_id: str):
    return json_response(file_object(_existing(file_id)))


@bp.get("/v1/files/<file_id>/content")
def download_file(file_id: str):
    record = _existing(file_id)
    if not record.downloadable:
        # Anthropic's rule: only files a tool created can be downloaded; what a client uploaded it has already.
        raise FileNotDownloadableError(f"file {file_id} is not downloadable: only files created by tools can be "
                                       "downloaded, not uploaded ones")
    if record.expired(time.time()):
        raise FileExpiredError(f"file {file_id} has expired: its content is no longer available")
    content = store().open(record)
    if content is None:                  # deleted between the two reads
        raise NotFoundError(f"file {file_id!r} not found")
    response = send_file(content, mimetype=record.mime_type, as_attachment=True, download_name=record.filename,
                         conditional=False, etag=False, max_age=None)
    # As stored: Flask would add "; charset=utf-8" to a text type, a claim about bytes it has not read.
    response.headers["Content-Type"] = record.mime_type
    response.content_length = record.size_bytes      # a file object's size is not known to send_file
    return response


@bp.delete("/v1/files/<file_id>")
def delete_file(file_id: str):
    if not store().delete(file_id, now=time.time()):
        raise NotFoundError(f"file {file_id!r} not found")
    return json_response({"id": file_id, "type": "file_deleted"})
