"""The write transaction the server's SQLite stores (Message Batches, Files) share."""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def write_transaction(conn: sqlite3.Connection, lock: threading.Lock) -> Iterator[sqlite3.Connection]:
    """`conn` (in autocommit mode: no implicit transactions) inside one BEGIN IMMEDIATE, under `lock`: committed
    when the block ends, rolled back when it raises."""
    with lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
