"""The one way the tests run the real server: `python -m app serve` on the default model, as a subprocess.

e2e, browser and notebook tests each declare their fixture with `real_server_fixture`, so the start, the health
poll, the log file under test-output/ and the stop are written once (in `app.launcher.ServerProcess`) and used
everywhere the same way. Each server gets a data dir of its own (its Message Batches store and signing key), with
the default model's converted weights linked in, so it loads as fast as a server on the shared one.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from app.launcher import ROOT, ServerProcess

OUTPUT = ROOT / "test-output"


def private_data_dir(tmp_path_factory, name: str) -> Path:
    """A new data dir whose `converted/` is the shared one (converting the default GGUF there first if needed)."""
    from app.config import Config
    from app.engine.model.loader import converted_gguf_dir, default_gguf_path

    shared = Path(Config().data_dir)
    converted_gguf_dir(default_gguf_path(), shared)
    directory = tmp_path_factory.mktemp(name)
    (directory / "converted").symlink_to(shared / "converted")
    return directory


def real_server_fixture(log_name: str, *flags: str, scope: str = "session", env: dict[str, str] | None = None):
    """A pytest fixture yielding a running `ServerProcess(*flags)` that logs to test-output/<log_name>.

    Module scope stops the server when its module is done, so it does not idle (or finish an abandoned generation)
    while later modules run: one model process at a time on a small machine.
    """
    @pytest.fixture(scope=scope)
    def server(tmp_path_factory):
        data_dir = private_data_dir(tmp_path_factory, Path(log_name).stem)
        with ServerProcess(*flags, "--data-dir", str(data_dir), log_path=OUTPUT / log_name,
                           env=env) as running:
            yield running
    return server
