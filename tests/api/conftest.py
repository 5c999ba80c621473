"""Fixtures: an app over a FakeEngine (Flask test client), and the same app behind a real waitress server for the
official SDK."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import anthropic
import pytest
import waitress

from app import create_app
from app.config import Config

from fake_engine import FakeEngine


@pytest.fixture
def engine():
    return FakeEngine()


@pytest.fixture
def make_app(tmp_path):
    """make_app(engine=None, **config_fields) -> a Flask app; data_dir is the test's tmp_path."""
    def make(engine=None, **config):
        return create_app(Config(data_dir=str(tmp_path), **config), engine=engine or FakeEngine())
    return make


@pytest.fixture
def app(make_app, engine):
    return make_app(engine)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def live(make_app, engine):
    """The app (api_key "k", 100 kB body limit) served by waitress on a free port, as `thinkserve serve` runs it
    (channel_request_lookahead makes client disconnects visible); and an SDK client with retries off."""
    app = make_app(engine, api_key="k", max_request_bytes=100_000)
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4, channel_request_lookahead=1,
                                    asyncore_loop_timeout=0.05)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.effective_port}"
    sdk = anthropic.Anthropic(base_url=url, api_key="k", max_retries=0, timeout=20)
    try:
        yield SimpleNamespace(url=url, app=app, engine=engine, sdk=sdk)
    finally:
        sdk.close()
        # Close every socket from inside the server's own loop thread (closing them from here races its select);
        # with its map empty, the loop ends.
        try:
            server.trigger.pull_trigger(lambda: [channel.close() for channel in list(server._map.values())])
        except OSError:
            # The loop has closed its trigger already (seen once in CI under load): it is ending by itself.
            server.close()
        thread.join(timeout=5)
        server.task_dispatcher.shutdown(timeout=2)
        assert not thread.is_alive()


@pytest.fixture
def apps(make_app):
    """make_app, with every batch runner stopped at the end of the test."""
    made = []

    def make(engine=None, **config):
        made.append(make_app(engine, **config))
        return made[-1]
    yield make
    for app in made:
        app.extensions["thinkserve.batches"].close()
