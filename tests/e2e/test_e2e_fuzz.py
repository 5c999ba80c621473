"""The fuzz suite of tests/api/test_fuzz.py against the real server on the default model: opt-in, because a few
hundred generations take minutes on a CPU. Skipped unless `THINKSERVE_FUZZ_REAL=1`, so CI stays fast:

    THINKSERVE_FUZZ_REAL=1 python -m pytest tests/e2e/test_e2e_fuzz.py --hypothesis-show-statistics

`THINKSERVE_FUZZ_REAL_EXAMPLES` sets the cases per test (default 150: 375 in all). Generations are kept
short (max_tokens 20 to 70) so the time goes into many shapes of request rather than long answers.
"""
from __future__ import annotations

import os
import time

import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from e2e_server import API_KEY, MODEL
from fuzz_invariants import check_all_batches, check_answer
from fuzz_requests import batch_bodies, encode, message_bodies, mutated, prompt_bodies
from real_server import real_server_fixture

pytestmark = pytest.mark.skipif(os.environ.get("THINKSERVE_FUZZ_REAL") != "1",
                                reason="opt-in: set THINKSERVE_FUZZ_REAL=1 to fuzz the real server (minutes)")

server = real_server_fixture("e2e-fuzz-server.log", "--api-key", API_KEY, "--min-thinking-budget", "16",
                             scope="module")
EXAMPLES = int(os.environ.get("THINKSERVE_FUZZ_REAL_EXAMPLES", "150"))
SHORT = st.integers(20, 70)
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def post(server, path: str, body) -> None:
    response = requests.post(server.base_url + path, data=encode(body), timeout=300,
                             headers={"x-api-key": API_KEY, "content-type": "application/json"})
    check_answer(path, response.status_code, dict(response.headers), response.content)
    event(f"{path} -> {response.status_code}")


@fuzz
@given(body=mutated(message_bodies(MODEL, max_tokens=SHORT)))
def test_messages(server, body):
    post(server, "/v1/messages", body)


@fuzz
@given(body=mutated(prompt_bodies(MODEL)), path=st.sampled_from(["/v1/messages/count_tokens",
                                                                   "/v1/messages/render"]))
def test_count_tokens_and_render(server, body, path):
    post(server, path, body)


@settings(fuzz, max_examples=max(EXAMPLES // 2, 10))
@given(body=mutated(batch_bodies(MODEL, max_tokens=st.integers(1, 8))))
def test_batches(server, body):
    post(server, "/v1/messages/batches", body)


def test_the_server_still_answers_and_ends_idle(server):
    health = requests.get(server.base_url + "/health", timeout=30)
    assert health.status_code == 200
    deadline = time.monotonic() + 600       # the fuzzed batches may still be running: a hang guard only
    while requests.get(server.base_url + "/health", timeout=30).json()["engine"]["in_flight"] \
            and time.monotonic() < deadline:
        time.sleep(1)
    assert requests.get(server.base_url + "/health", timeout=30).json()["engine"]["in_flight"] == 0


def test_every_fuzzed_batch_ends_with_valid_results(server):
    def get(path):
        response = requests.get(server.base_url + path, headers={"x-api-key": API_KEY}, timeout=60)
        return response.status_code, response.content
    assert check_all_batches(get) > 0
