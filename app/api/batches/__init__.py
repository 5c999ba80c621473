"""The Message Batches API: a SQLite store (`store`), a background runner (`runner`), the wire shapes (`objects`)
and the routes (`routes`). Each batch request runs through the same service function as POST /v1/messages
(`app.api.message_service.run_message`, over `app.service.generation`), at background priority."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from ..message_service import run_message
from ..state import ServerState
from .routes import bp
from .runner import BatchRunner
from .store import BatchStore, StoreBusyError

STORE_FILE = "batches.sqlite3"
log = logging.getLogger(__name__)


@dataclass
class Batches:
    store: BatchStore | None
    runner: BatchRunner | None
    expiry_hours: float
    unavailable: str | None = None     # why the routes answer 503 instead (the store belongs to another process)

    def close(self) -> None:
        """Stop the runner (running requests go back to the queue) and release the store."""
        if self.runner is not None:
            self.runner.close()
        if self.store is not None:
            self.store.close()


def install(app: Flask, server: ServerState) -> Batches:
    """Open the store in the data dir, resume what a previous process left unfinished, register the routes."""
    app.register_blueprint(bp)
    config = server.config
    try:
        store = BatchStore(Path(config.data_dir) / STORE_FILE)
    except StoreBusyError as error:
        # Two servers on one data dir (the default one, say) must not run each other's batches.
        reason = f"Message Batches are unavailable on this server: {error}; give it its own --data-dir"
        log.warning("%s", reason)
        batches = app.extensions["thinkserve.batches"] = Batches(None, None, config.batch_expiry_hours, reason)
        return batches
    resumed = store.recover()
    if resumed:
        log.info("batches: %d requests that were running when the server stopped are queued again", resumed)

    def execute(params, stop, on_submit) -> dict:
        message = run_message(server, params, stop=stop, background=True, on_submit=on_submit)
        message["usage"]["service_tier"] = "batch"     # as Anthropic reports batch usage
        return message

    def engine_ready() -> bool:
        return server.engine.is_ready() and not server.engine.load_error()

    runner = BatchRunner(store, execute, ready=engine_ready, concurrency=config.batch_concurrency)
    batches = app.extensions["thinkserve.batches"] = Batches(store, runner, config.batch_expiry_hours)
    if store.has_unfinished():
        runner.wake()      # batches a previous process left unfinished go on now
    return batches
