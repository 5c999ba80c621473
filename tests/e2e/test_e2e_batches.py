"""Message Batches against the real server on the default model, through the official SDK: create → poll → results,
and a batch that survives `kill -9` of the server in the middle of it.

The servers here share one data dir of their own, so the restarted server finds the batch the killed one left.
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import anthropic
import pytest

from app.launcher import ServerProcess
from e2e_server import API_KEY, MODEL
from real_server import OUTPUT, private_data_dir

HANG_GUARD_S = 600          # only reached if something hangs
# Two requests at a time, so a batch of 12 is still running when the test kills the server.
FLAGS = ("--api-key", API_KEY, "--batch-concurrency", "2")
TOPICS = ["the sea", "a cat", "bread", "snow", "a clock", "music", "a river", "the moon", "a garden", "rain",
          "a train", "coffee"]


def params(topic: str, max_tokens: int) -> dict:
    return {"model": MODEL, "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": f"Write one sentence about {topic}."}]}


def wait_for(predicate, what: str, poll_s: float = 0.2):
    deadline = time.monotonic() + HANG_GUARD_S
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(poll_s)
    return value


def ended(client, batch_id: str):
    return wait_for(lambda: (b := client.messages.batches.retrieve(batch_id)).processing_status == "ended" and b,
                    "the batch to end")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return private_data_dir(tmp_path_factory, "batches-data")


@pytest.fixture(scope="module")
def batch_server(data_dir):
    with ServerProcess(*FLAGS, "--data-dir", str(data_dir), log_path=OUTPUT / "e2e-batches-server.log") as running:
        yield running


def sdk(server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url, api_key=API_KEY, max_retries=2)


def test_create_poll_results(batch_server):
    client = sdk(batch_server)
    created = client.messages.batches.create(
        requests=[{"custom_id": f"q{i}", "params": params(topic, 8)} for i, topic in enumerate(TOPICS[:4])])
    assert created.processing_status == "in_progress" and created.request_counts.processing == 4
    batch = ended(client, created.id)
    assert batch.request_counts.succeeded == 4 and batch.request_counts.processing == 0
    assert batch.results_url == f"{batch_server.base_url}/v1/messages/batches/{created.id}/results"
    results = {r.custom_id: r.result for r in client.messages.batches.results(created.id)}
    assert sorted(results) == ["q0", "q1", "q2", "q3"]
    for result in results.values():
        assert result.type == "succeeded"
        message = result.message
        assert message.content[0].type == "text" and message.content[0].text
        assert message.model == MODEL and 0 < message.usage.output_tokens <= 8
    assert created.id in [b.id for b in client.messages.batches.list(limit=20)]
    assert client.messages.batches.delete(created.id).type == "message_batch_deleted"


def test_cancel_ends_the_batch_with_the_unstarted_requests_canceled(batch_server):
    client = sdk(batch_server)
    created = client.messages.batches.create(
        requests=[{"custom_id": f"c{i}", "params": params(topic, 64)} for i, topic in enumerate(TOPICS)])
    assert client.messages.batches.cancel(created.id).processing_status in ("canceling", "ended")
    batch = ended(client, created.id)
    assert batch.cancel_initiated_at is not None
    counts = batch.request_counts
    assert counts.canceled >= len(TOPICS) - 2 and counts.succeeded + counts.canceled == len(TOPICS)
    results = {r.custom_id: r.result.type for r in client.messages.batches.results(created.id)}
    assert sorted(results) == sorted(f"c{i}" for i in range(len(TOPICS)))


def test_a_batch_survives_kill_9(batch_server, data_dir):
    """Runs last in this module: it kills the module's server, then starts a new one on the same data dir."""
    client = sdk(batch_server)
    created = client.messages.batches.create(
        requests=[{"custom_id": f"k{i}", "params": params(topic, 16)} for i, topic in enumerate(TOPICS)])

    def partly_done():
        progress = client.messages.batches.retrieve(created.id).thinkserve
        return 0 < progress["succeeded"] < len(TOPICS) and progress["running"] > 0
    wait_for(partly_done, "some requests done and others running", poll_s=0.02)
    batch_server.process.kill()                    # SIGKILL: no shutdown code runs
    batch_server.process.wait()

    with ServerProcess(*FLAGS, "--data-dir", str(data_dir), log_path=OUTPUT / "e2e-batches-restart.log") as again:
        client = sdk(again)
        batch = ended(client, created.id)
        results = list(client.messages.batches.results(created.id))
        log = again.log()
    assert batch.request_counts.succeeded == len(TOPICS)
    assert Counter(r.custom_id for r in results) == Counter(f"k{i}" for i in range(len(TOPICS)))   # once each
    assert all(r.result.type == "succeeded" and r.result.message.content for r in results)
    assert "queued again" in log        # the requests the killed server was running ran again here
