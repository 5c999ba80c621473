"""The one way the tests run the real server: `python -m app serve` on the default model, as a subprocess.

e2e, browser and notebook tests each declare their fixture with `real_server_fixture`, so the start, the health
poll, the log file under test-output/ and the stop are written once (in `app.launcher.ServerProcess`) and used
everywhere the same way.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from app.launcher import ROOT, ServerProcess

OUTPUT = ROOT / "test-output"


def real_server_fixture(log_name: str, *flags: str, scope: str = "session"):
    """A pytest fixture yielding a running `ServerProcess(*flags)` that logs to test-output/<log_name>.

    Module scope stops the server when its module is done, so it does not idle (or finish an abandoned generation)
    while later modules run: one model process at a time on a small machine.
    """
    @pytest.fixture(scope=scope)
    def server():
        with ServerProcess(*flags, log_path=Path(OUTPUT) / log_name) as running:
            yield running
    return server
