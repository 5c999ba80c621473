"""The Files API endpoints: the official SDK's round trip (`client.beta.files` and `client.files`), the metadata and
list shapes, content-addressed storage on disk, the size limit, downloads (only tool-made files) and expiry."""
from __future__ import annotations

import hashlib
import io
import json
import time
from datetime import datetime, timedelta, timezone

import anthropic
import pytest
from anthropic.types import FileExpiredError, FileNotDownloadableError

from app.api.files.objects import stored_filename
from app.service.file_store import FileStore

from api_helpers import assert_error
from pdf_bytes import pdf_bytes

FILE_KEYS = ["id", "type", "filename", "mime_type", "size_bytes", "created_at", "downloadable"]
FILES_BETA = {"anthropic-beta": "files-api-2025-04-14"}


def upload(client, data: bytes, filename: str = "notes.txt", mime_type: str | None = "text/plain", **form):
    part = (io.BytesIO(data), filename, mime_type) if mime_type else (io.BytesIO(data), filename)
    return client.post("/v1/files", data={"file": part, **form}, headers=FILES_BETA)


def uploaded(client, data: bytes, filename: str = "notes.txt", mime_type: str | None = "text/plain") -> dict:
    response = upload(client, data, filename, mime_type)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def store_of(app) -> FileStore:
    return app.extensions["thinkserve.files"]


def tool_made_file(app, data: bytes, mime_type: str, *, created_at: float | None = None,
                   expires_at: float | None = None) -> str:
    """A downloadable file, as a tool's output would be stored (no route makes one: uploads never are)."""
    store = store_of(app)
    staged = store.stage(io.BytesIO(data), max_bytes=len(data))
    record = store.add(staged, file_id=f"file_tool{time.monotonic_ns()}", filename="chart.png", mime_type=mime_type,
                       now=created_at or time.time(), expires_at=expires_at, downloadable=True)
    return record.id


@pytest.mark.parametrize("resource", ["beta", "ga"])
def test_the_sdk_round_trip(live, resource):
    files = live.sdk.beta.files if resource == "beta" else live.sdk.files
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    meta = files.upload(file=("report.txt", b"The launch code is 1234.", "text/plain"))
    assert meta.id.startswith("file_") and meta.type == "file"
    assert (meta.filename, meta.mime_type, meta.size_bytes, meta.downloadable) == (
        "report.txt", "text/plain", 24, False)
    assert before <= meta.created_at <= datetime.now(timezone.utc)
    assert files.retrieve_metadata(meta.id) == meta
    assert [f.id for f in files.list()] == [meta.id]
    with pytest.raises(FileNotDownloadableError) as refused:       # uploaded files are not downloadable
        files.download(meta.id)
    assert refused.value.status_code == 400 and refused.value.body["error"]["type"] == "invalid_request_error"
    deleted = files.delete(meta.id)
    assert (deleted.id, deleted.type) == (meta.id, "file_deleted")
    with pytest.raises(anthropic.NotFoundError):
        files.retrieve_metadata(meta.id)
    with pytest.raises(anthropic.NotFoundError):
        files.delete(meta.id)
    assert list(files.list()) == []


def test_the_sdk_downloads_a_tool_made_file_with_its_type(live):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    file_id = tool_made_file(live.app, png, "image/png")
    assert live.sdk.beta.files.retrieve_metadata(file_id).downloadable is True
    for files in (live.sdk.beta.files, live.sdk.files):
        response = files.download(file_id)
        assert response.read() == png
        assert response.headers["content-type"] == "image/png"
        assert response.headers["content-length"] == str(len(png))
        assert 'filename=chart.png' in response.headers["content-disposition"]


def test_the_sdk_sees_an_expired_file(live):
    gone = tool_made_file(live.app, b"old", "image/png", created_at=time.time() - 7200, expires_at=time.time() - 1)
    with pytest.raises(FileExpiredError):
        live.sdk.files.download(gone)


def test_the_sdk_pages_through_files_newest_first(live):
    ids = [live.sdk.files.upload(file=(f"f{i}.txt", f"file {i}".encode(), "text/plain")).id for i in range(5)]
    first = live.sdk.beta.files.list(limit=2)
    assert [f.id for f in first.data] == ids[:2:-1] and first.next_page
    assert [f.id for f in live.sdk.beta.files.list(limit=2)] == ids[::-1]        # every page, walked by the SDK
    assert [f.id for f in live.sdk.files.list(ids=[ids[1], ids[3], "file_gone"])] == [ids[3], ids[1]]


def test_list_by_after_id_and_before_id(client):
    ids = [uploaded(client, f"file {i}".encode())["id"] for i in range(5)]
    newest_first = ids[::-1]
    page = client.get("/v1/files?limit=2").get_json()
    assert list(page) == ["data", "has_more", "first_id", "last_id", "next_page"]
    assert [f["id"] for f in page["data"]] == newest_first[:2] and page["has_more"] is True
    assert (page["first_id"], page["last_id"]) == tuple(newest_first[:2])
    page = client.get(f"/v1/files?limit=2&after_id={page['last_id']}").get_json()
    assert [f["id"] for f in page["data"]] == newest_first[2:4] and page["has_more"] is True
    page = client.get(f"/v1/files?limit=2&after_id={page['last_id']}").get_json()
    assert [f["id"] for f in page["data"]] == newest_first[4:] and page["has_more"] is False
    assert page["next_page"] is None
    back = client.get(f"/v1/files?limit=2&before_id={newest_first[3]}").get_json()
    assert [f["id"] for f in back["data"]] == newest_first[1:3] and back["has_more"] is True
    assert_error(client.get("/v1/files?after_id=file_nope"), 400, "invalid_request_error")
    assert_error(client.get(f"/v1/files?after_id={ids[0]}&before_id={ids[1]}"), 400, "invalid_request_error")
    assert_error(client.get("/v1/files?limit=0"), 400, "invalid_request_error")


def test_metadata_shape_and_what_the_upload_is_named(client):
    meta = uploaded(client, b"%PDF-1.4 not really", "/home/me/scan.pdf", mime_type=None)
    assert list(meta) == FILE_KEYS
    assert (meta["filename"], meta["mime_type"]) == ("scan.pdf", "application/pdf")     # from the extension
    assert uploaded(client, b"%PDF-1.7 data", "blob", "application/octet-stream")["mime_type"] == "application/pdf"
    assert uploaded(client, b"a,b\n", "t.csv", "text/csv; charset=utf-8")["mime_type"] == "text/csv"
    assert uploaded(client, b"???", "blob", None)["mime_type"] == "application/octet-stream"
    assert client.get(f"/v1/files/{meta['id']}").get_json() == meta
    assert stored_filename("", "application/pdf") == "unnamed.pdf"
    assert stored_filename("../../etc/passwd", "text/plain") == "passwd"
    assert stored_filename("C:\\Users\\me\\scan.pdf", "application/pdf") == "scan.pdf"


def test_bytes_are_stored_once_by_their_sha256(client, tmp_path):
    data = b"the same bytes, twice"
    blob = tmp_path / "files" / "blobs" / hashlib.sha256(data).hexdigest()[:2] / hashlib.sha256(data).hexdigest()
    first, second = uploaded(client, data, "a.txt"), uploaded(client, data, "b.txt")
    assert first["id"] != second["id"] and blob.read_bytes() == data
    assert len([p for p in (tmp_path / "files" / "blobs").rglob("*") if p.is_file()]) == 1
    assert client.delete(f"/v1/files/{first['id']}").status_code == 200
    assert blob.exists()                                   # the other file still names it
    assert client.delete(f"/v1/files/{second['id']}").status_code == 200
    assert not blob.exists()


def test_files_survive_a_restart(make_app, tmp_path):
    first = make_app()
    meta = uploaded(first.test_client(), b"kept")
    first.extensions["thinkserve.batches"].close()
    store_of(first).close()
    assert make_app().test_client().get(f"/v1/files/{meta['id']}").get_json() == meta


def test_missing_files_are_404s(client):
    for method, path in [("get", "/v1/files/file_nope"), ("get", "/v1/files/file_nope/content"),
                         ("delete", "/v1/files/file_nope")]:
        assert "file_nope" in assert_error(getattr(client, method)(path), 404, "not_found_error")


def test_an_upload_needs_a_file_part(client):
    response = client.post("/v1/files", data={"other": (io.BytesIO(b"x"), "x.txt")})
    assert assert_error(response, 400, "invalid_request_error").startswith("file: Field required")


def test_the_size_limit_is_a_413(make_app):
    client = make_app(max_file_bytes=1000).test_client()
    assert uploaded(client, b"x" * 1000)["size_bytes"] == 1000
    message = assert_error(upload(client, b"x" * 1001), 413, "request_too_large")
    assert "larger than 1000 bytes" in message and "--max-file-bytes" in message
    assert_error(upload(client, b"x" * 200_000), 413, "request_too_large")      # refused from Content-Length
    assert client.get("/v1/files").get_json()["data"][0]["size_bytes"] == 1000     # nothing else was kept


def test_the_default_limit_is_500_mb(client, app):
    assert app.extensions["thinkserve"].config.max_file_bytes == 500 * 1024 * 1024


def test_expiring_uploads(client, app):
    meta = upload(client, b"brief", expires_in_seconds="3600").get_json()
    created = datetime.fromisoformat(meta["created_at"])
    assert datetime.fromisoformat(meta["expires_at"]) - created == timedelta(seconds=3600)
    for bad in ("59", "7776001", "soon"):
        assert assert_error(upload(client, b"x", expires_in_seconds=bad), 400,
                            "invalid_request_error").startswith("expires_in_seconds: ")
    gone = tool_made_file(app, b"old chart", "image/png", created_at=time.time() - 7200, expires_at=time.time() - 1)
    response = client.get(f"/v1/files/{gone}/content")
    assert response.status_code == 404
    error = json.loads(response.get_data(as_text=True))["error"]
    assert error["type"] == "not_found_error" and error["details"] == {"error_code": "file_expired"}
    assert client.get(f"/v1/files/{gone}").status_code == 200       # the metadata stays


def test_a_pdf_upload_keeps_its_bytes(client, tmp_path):
    data = pdf_bytes("Page one")
    meta = uploaded(client, data, "doc.pdf", "application/pdf")
    digest = hashlib.sha256(data).hexdigest()
    assert (tmp_path / "files" / "blobs" / digest[:2] / digest).read_bytes() == data
    assert meta["size_bytes"] == len(data)
