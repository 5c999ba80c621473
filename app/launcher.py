"""Start a thinkserve server as a subprocess and wait until it is healthy: for tests, benchmarks and notebooks."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def terminate(process: subprocess.Popen, grace_s: float = 15) -> None:
    """End a server process: SIGTERM, then SIGKILL if it has not exited within `grace_s`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class ServerProcess:
    """`python -m app serve --port <free> *flags`, logging to `log_path`; `stop()` (or `with`) ends it. `env` adds
    environment variables (e.g. a test hook) to the server's."""

    def __init__(self, *flags: str, log_path: str | Path, startup_timeout_s: float = 300,
                 env: dict[str, str] | None = None):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        self.started = time.monotonic()
        self.process = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(self.port), *flags],
                                        cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        try:
            self.ready_after_s = self._wait_healthy(startup_timeout_s)
        except BaseException:
            self.stop()
            raise

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def _wait_healthy(self, timeout_s: float) -> float:
        deadline = self.started + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            if self._healthy():
                return time.monotonic() - self.started
            time.sleep(0.2)
        raise RuntimeError(f"server not healthy after {timeout_s}s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        terminate(self.process)
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def connect_or_start(*flags: str, log_path: str | Path, base_url: str | None = None):
    """For notebooks and scripts: `(base_url, stop)` of a server to talk to.

    With `base_url` (or `$THINKSERVE_BASE_URL`) set, that server is used and `stop` does nothing. Otherwise a
    `ServerProcess(*flags, log_path=log_path)` is started here; `stop` ends it, and is also registered with
    `atexit`, so an interpreter (a notebook kernel) that dies half-way does not leave the server running.
    """
    import atexit

    base_url = base_url or os.environ.get("THINKSERVE_BASE_URL", "")
    if base_url:
        return base_url.rstrip("/"), lambda: None
    server = ServerProcess(*flags, log_path=log_path)
    atexit.register(server.stop)
    return server.base_url, server.stop
