"""The Files API: the store (`app.service.file_store`, in `<data dir>/files`), the routes (`routes`), the wire
shapes (`objects`), and file sources in messages (`sources`)."""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from ...config import Config
from ...service.file_store import FileStore
from ..state import ServerState
from .routes import bp
from .sources import resolve_file_sources

__all__ = ["install", "resolve_file_sources", "upload_body_limit"]
STORE_DIR = "files"
# Room for the multipart framing around the file (boundaries, part headers, a form field or two): the upload's
# body may be this much larger than the largest file, so an oversized file is refused by the route, which says so.
MULTIPART_ALLOWANCE = 64 * 1024


def upload_body_limit(config: Config) -> int:
    return config.max_file_bytes + MULTIPART_ALLOWANCE


def install(app: Flask, server: ServerState) -> FileStore:
    """Open the store and register the routes. Messages (and the batch runner) reach it as `server.files`."""
    store = FileStore(Path(server.config.data_dir) / STORE_DIR)
    app.extensions["thinkserve.files"] = server.files = store
    app.register_blueprint(bp)
    return store
