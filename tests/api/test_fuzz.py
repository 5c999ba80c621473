"""Property-based fuzzing of every POST endpoint against the app over the fake engine (tests/shared/fuzz_requests.py
makes the bodies, tests/shared/fuzz_invariants.py says what every answer must be).

`THINKSERVE_FUZZ_EXAMPLES` sets the cases per test (default 750: about two thousand in all, under a minute in CI);
raise it for a longer hunt. The same generator runs against the real server in tests/e2e/test_e2e_fuzz.py.
"""
from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app import create_app
from app.config import Config

from fake_engine import FakeEngine
from fuzz_invariants import check_all_batches, check_answer
from fuzz_requests import batch_bodies, encode, message_bodies, mutated, prompt_bodies

MODEL = FakeEngine.model_id
EXAMPLES = int(os.environ.get("THINKSERVE_FUZZ_EXAMPLES", "750"))
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(Config(data_dir=str(tmp_path_factory.mktemp("fuzz")), min_thinking_budget=16),
                     engine=FakeEngine(context_window=1_000_000))
    return app.test_client()


def post(client, path: str, body) -> tuple[int, dict]:
    response = client.post(path, data=encode(body), content_type="application/json")
    payload = response.get_data()
    check_answer(path, response.status_code, dict(response.headers), payload)
    event(f"{path} -> {response.status_code}")     # shown by --hypothesis-show-statistics
    return response.status_code, json.loads(payload) if response.mimetype == "application/json" else {}


def check_counts_add_up(client, body: dict, message: dict) -> None:
    """A Message's whole prompt is what count_tokens says for the same body."""
    status, counted = post(client, "/v1/messages/count_tokens", body)
    assert status == 200
    usage = message["usage"]
    assert usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"] \
        == counted["input_tokens"]


@fuzz
@given(body=mutated(message_bodies(MODEL)))
def test_messages(client, body):
    status, answer = post(client, "/v1/messages", body)
    if status == 200 and answer:
        check_counts_add_up(client, body, answer)


@fuzz
@given(body=mutated(prompt_bodies(MODEL)), path=st.sampled_from(["/v1/messages/count_tokens",
                                                                   "/v1/messages/render"]))
def test_count_tokens_and_render(client, body, path):
    post(client, path, body)


@settings(fuzz, max_examples=max(EXAMPLES // 2, 20))    # each batch is written to disk: the slowest endpoint
@given(body=mutated(batch_bodies(MODEL)))
def test_batches(client, body):
    post(client, "/v1/messages/batches", body)


@settings(max_examples=max(EXAMPLES // 4, 20), deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)),
       path=st.sampled_from(["/v1/messages", "/v1/messages/count_tokens", "/v1/messages/render",
                             "/v1/messages/batches"]))
def test_arbitrary_bytes(client, raw, path):
    response = client.post(path, data=raw, content_type="application/json")
    check_answer(path, response.status_code, dict(response.headers), response.get_data())


def test_health_still_answers_after_the_fuzz(client):
    # Module order runs this last: whatever the fuzz threw, the app still serves health and a plain request.
    assert client.get("/health").status_code == 200
    response = client.post("/v1/messages", json={"model": MODEL, "max_tokens": 5,
                                                 "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200 and response.get_json()["content"]


def test_every_fuzzed_batch_ends_with_valid_results(client):
    def get(path):
        response = client.get(path)
        return response.status_code, response.get_data()
    assert check_all_batches(get) > 0
