import pytest

from e2e_server import API_KEY
from real_server import real_server_fixture

# The default model behind the real WSGI server, with the default batch and queue.
server = real_server_fixture("e2e-server.log", "--api-key", API_KEY, "--min-thinking-budget", "16",
                             "--ping-interval", "1")
# Room for one running and one waiting request, so a test can fill it and see the 529. Module scope: it stops
# when the test module that uses it is done.
small_server = real_server_fixture("e2e-small-server.log", "--api-key", API_KEY, "--max-batch-size", "1",
                                   "--max-queue", "1", scope="module")


@pytest.fixture(scope="session")
def client(server):
    import anthropic
    # Retries honour retry-after on a 529.
    return anthropic.Anthropic(base_url=server.base_url, api_key=API_KEY, max_retries=2)
