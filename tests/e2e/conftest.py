import pytest

from app.launcher import ServerProcess
from e2e_server import API_KEY, OUTPUT


@pytest.fixture(scope="session")
def server():
    """The default model behind the real WSGI server. A queue of 1 so the overload test can fill it."""
    running = ServerProcess("--api-key", API_KEY, "--min-thinking-budget", "16", "--max-queue", "1",
                            "--ping-interval", "1", log_path=OUTPUT / "e2e-server.log")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def client(server):
    import anthropic
    # Retries honour retry-after on a 529: the queue holds one, and a cancelled generation frees the model
    # within the server's poll interval, not at the instant a client hangs up.
    return anthropic.Anthropic(base_url=server.base_url, api_key=API_KEY, max_retries=2)
