"""The real-model layer (`make test-models`): a real server on Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, a qwen2
model with a Hermes tool template), fetched and verified by fetch_test_model.py. Skipped when the file is missing."""
from __future__ import annotations

import pytest

from app.launcher import ServerProcess
from fetch_test_model import test_model_path
from models_server import API_KEY
from real_server import OUTPUT


@pytest.fixture(scope="session")
def qwen_server(tmp_path_factory):
    path = test_model_path()
    if path is None:
        pytest.skip("the test model is not fetched: run `make test-models`")
    with ServerProcess("--model", path, "--api-key", API_KEY, "--min-thinking-budget", "16",
                       log_path=OUTPUT / "models-server.log") as running:
        yield running


@pytest.fixture(scope="session")
def qwen(qwen_server):
    import anthropic
    return anthropic.Anthropic(base_url=qwen_server.base_url, api_key=API_KEY, max_retries=0)
