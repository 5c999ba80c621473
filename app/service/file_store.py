"""The Files API store: each file's metadata a row in SQLite, its bytes a file on disk named by their sha256.

Content-addressed, so the same bytes uploaded twice (the same PDF under two names, say) are kept once: a blob is
removed only when no file that has not expired names it any more. Blobs are written to a temporary file in the
same directory first (hashed on the way) and moved into place inside the write transaction that adds the row, and
a delete removes its blob inside the transaction that drops the row: so two processes sharing one data dir never
remove a blob the other has just taken into use (SQLite's BEGIN IMMEDIATE orders them).

Protocol-neutral: the Anthropic routes (`app.api.files`) shape the wire objects and errors.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .sqlite_transaction import write_transaction

CHUNK = 1024 * 1024
HEAD_BYTES = 16       # kept from the start of an upload, to tell a PDF or an image from its magic bytes
# A temporary upload file this old was left by a process that died mid-upload (a younger one may be another
# process's upload in progress, on a shared data dir).
STALE_UPLOAD_S = 24 * 3600

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,          -- upload order: lists page by it, newest first
    id TEXT NOT NULL UNIQUE,
    filename TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,                           -- names the blob holding the bytes
    created_at REAL NOT NULL,                       -- Unix seconds; RFC 3339 only on the wire
    expires_at REAL,                                -- NULL: never
    downloadable INTEGER NOT NULL DEFAULT 0         -- only files a tool made are; uploads never are
);
CREATE INDEX IF NOT EXISTS files_by_blob ON files(sha256);
"""
COLUMNS = "id, filename, mime_type, size_bytes, sha256, created_at, expires_at, downloadable"


@dataclass(frozen=True)
class FileRecord:
    id: str
    filename: str
    mime_type: str
    size_bytes: int
    sha256: str
    created_at: float
    expires_at: float | None
    downloadable: bool

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class StagedBlob:
    """Bytes written to a temporary file and hashed, waiting for `FileStore.add`."""
    path: Path
    sha256: str
    size_bytes: int
    head: bytes


class FileTooLargeError(Exception):
    def __init__(self, max_bytes: int):
        super().__init__(f"larger than {max_bytes} bytes")
        self.max_bytes = max_bytes


class FileStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Autocommit mode: transactions are the explicit BEGIN IMMEDIATE of `_write`, nothing implicit.
        self._conn = sqlite3.connect(self.root / "files.sqlite3", timeout=30, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(SCHEMA)
        self._purged_until = float("-inf")      # expiries up to here have had their blobs considered
        self._sweep_staging()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._conn, self._lock)

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- bytes ---------------------------------------------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        return self.blobs / sha256[:2] / sha256

    def stage(self, stream: BinaryIO, *, max_bytes: int) -> StagedBlob:
        """Copy an upload to a temporary file beside the blobs, hashing it; FileTooLargeError past max_bytes."""
        digest, size, head = hashlib.sha256(), 0, b""
        handle, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.blobs)
        try:
            with os.fdopen(handle, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise FileTooLargeError(max_bytes)
                    if len(head) < HEAD_BYTES:
                        head += chunk[:HEAD_BYTES - len(head)]
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            os.unlink(name)
            raise
        return StagedBlob(Path(name), digest.hexdigest(), size, head)

    def discard(self, staged: StagedBlob) -> None:
        staged.path.unlink(missing_ok=True)

    def read(self, record: FileRecord) -> bytes | None:
        """The file's bytes; None if they are gone (deleted or expired meanwhile)."""
        try:
            return self.blob_path(record.sha256).read_bytes()
        except FileNotFoundError:
            return None

    def open(self, record: FileRecord) -> BinaryIO | None:
        """The blob opened for reading (it stays readable if deleted meanwhile); None if it is gone already."""
        try:
            return open(self.blob_path(record.sha256), "rb")
        except FileNotFoundError:
            return None

    # -- rows ----------------------------------------------------------------------------------------------------

    def add(self, staged: StagedBlob, *, file_id: str, filename: str, mime_type: str, now: float,
            expires_at: float | None = None, downloadable: bool = False) -> FileRecord:
        self.purge_expired(now)
        blob = self.blob_path(staged.sha256)
        with self._write() as conn:
            if blob.exists():
                self.discard(staged)         # the same bytes are kept already
            else:
                blob.parent.mkdir(exist_ok=True)
                os.replace(staged.path, blob)
            conn.execute(f"INSERT INTO files ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (file_id, filename, mime_type, staged.size_bytes, staged.sha256, now, expires_at,
                          int(downloadable)))
        return self.get(file_id)

    def get(self, file_id: str) -> FileRecord | None:
        rows = self._query(f"SELECT {COLUMNS} FROM files WHERE id = ?", (file_id,))
        return _record(rows[0]) if rows else None

    def delete(self, file_id: str, *, now: float) -> bool:
        """Drop the row, and the blob if no live file names it any more. False if there was no such file."""
        with self._write() as conn:
            row = conn.execute("SELECT sha256 FROM files WHERE id = ?", (file_id,)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
            self._drop_unused_blob(conn, row[0], now)
        return True

    def purge_expired(self, now: float) -> None:
        """The bytes of files that expired since the last purge go, unless a live file shares them; their
        metadata stays, as Anthropic keeps an expired file's metadata without its content."""
        with self._write() as conn:
            digests = conn.execute("SELECT DISTINCT sha256 FROM files WHERE expires_at > ? AND expires_at <= ?",
                                   (self._purged_until, now)).fetchall()
            for (digest,) in digests:
                self._drop_unused_blob(conn, digest, now)
        self._purged_until = now

    def _drop_unused_blob(self, conn: sqlite3.Connection, digest: str, now: float) -> None:
        live = conn.execute("SELECT 1 FROM files WHERE sha256 = ? AND (expires_at IS NULL OR expires_at > ?) "
                            "LIMIT 1", (digest, now)).fetchone()
        if live is None:
            self.blob_path(digest).unlink(missing_ok=True)

    def list(self, *, limit: int, after_id: str | None = None,
             before_id: str | None = None) -> tuple[list[FileRecord], bool] | None:
        """A page of files, newest first, after (older than) or before (newer than) a cursor file; and whether
        more lie beyond it in that direction. None if the cursor is not a file."""
        seq = None
        cursor = after_id or before_id
        if cursor is not None:
            found = self._query("SELECT seq FROM files WHERE id = ?", (cursor,))
            if not found:
                return None
            seq = found[0][0]
        if before_id is not None:
            rows = self._query(f"SELECT {COLUMNS} FROM files WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit + 1))
            has_more, rows = len(rows) > limit, rows[:limit][::-1]
        else:
            where = "WHERE seq < ?" if seq is not None else ""
            rows = self._query(f"SELECT {COLUMNS} FROM files {where} ORDER BY seq DESC LIMIT ?",
                               ((seq,) if seq is not None else ()) + (limit + 1,))
            has_more, rows = len(rows) > limit, rows[:limit]
        return [_record(row) for row in rows], has_more

    def with_ids(self, ids: list[str]) -> list[FileRecord]:
        """The files among `ids` that exist, newest first; unknown ids are left out."""
        marks = ", ".join("?" * len(ids))
        rows = self._query(f"SELECT {COLUMNS} FROM files WHERE id IN ({marks}) ORDER BY seq DESC", tuple(ids))
        return [_record(row) for row in rows]

    def _sweep_staging(self) -> None:
        """Uploads a previous process died in the middle of leave their temporary files behind: remove them."""
        for leftover in self.blobs.glob("upload-*.part"):
            try:
                if time.time() - leftover.stat().st_mtime > STALE_UPLOAD_S:
                    leftover.unlink()
            except FileNotFoundError:
                pass


def _record(row: tuple) -> FileRecord:
    *fields, downloadable = row
    return FileRecord(*fields, downloadable=bool(downloadable))
