"""The Message Batches API over the fake engine: the official SDK's calls and typed results, the envelope checks at
create, per-request errors identical to POST /v1/messages, cancel, delete, list pages, request_counts, expiry, and
a batch picked up again by a new app over the same SQLite file after a crash."""
from __future__ import annotations

import contextlib
import json
import re
import time
from datetime import datetime, timedelta

import anthropic
import pytest

from app.api.batches.store import MAX_ATTEMPTS, BatchStore
from app.engine.events import TextDelta

from api_helpers import MODEL, assert_error, body
from fake_engine import FakeEngine

HANG_GUARD_S = 30    # only ever reached if something hangs
SLOW = [TextDelta("a"), TextDelta("b")]    # with delay_s=60: a generation that runs until it is cancelled


def wait_for(predicate, what: str):
    deadline = time.monotonic() + HANG_GUARD_S
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.02)
    return value


def batch_requests(n: int, **params) -> list[dict]:
    return [{"custom_id": f"req-{i}", "params": body(**params)} for i in range(n)]


def create_batch(client, requests) -> dict:
    response = client.post("/v1/messages/batches", json={"requests": requests})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def retrieve(client, batch_id: str) -> dict:
    return client.get(f"/v1/messages/batches/{batch_id}").get_json()


def wait_ended(client, batch_id: str) -> dict:
    return wait_for(lambda: (b := retrieve(client, batch_id))["processing_status"] == "ended" and b, "the batch to end")


def results(client, batch_id: str) -> dict[str, dict]:
    response = client.get(f"/v1/messages/batches/{batch_id}/results")
    assert response.status_code == 200, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    assert text.endswith("}\n") and "\n\n" not in text            # the SDK's JSONL decoder needs exactly this
    lines = [json.loads(line) for line in text.splitlines()]
    assert all(list(line) == ["custom_id", "result"] for line in lines)
    by_id = {line["custom_id"]: line["result"] for line in lines}
    assert len(by_id) == len(lines), "a custom_id has more than one result"
    return by_id


@pytest.fixture
def sdk(live):
    yield live.sdk
    live.app.extensions["thinkserve.batches"].close()


# -- the official SDK ---------------------------------------------------------------------------------------------

def test_sdk_create_retrieve_results(sdk, live):
    created = sdk.messages.batches.create(requests=[
        {"custom_id": "first", "params": {"model": MODEL, "max_tokens": 20, "messages": [{"role": "user",
                                                                                           "content": "hi"}]}},
        {"custom_id": "second", "params": {"model": "claude-sonnet-4-5", "max_tokens": 20, "temperature": 0,
                                           "messages": [{"role": "user", "content": "hello you"}]}},
        {"custom_id": "bad", "params": {"model": "gpt-4o", "max_tokens": 20,
                                        "messages": [{"role": "user", "content": "hi"}]}},
    ])
    assert isinstance(created, anthropic.types.messages.MessageBatch)
    assert re.fullmatch(r"msgbatch_[A-Za-z0-9]{24}", created.id)
    assert created.processing_status == "in_progress" and created.results_url is None
    assert created.request_counts.processing == 3
    batch = wait_for(lambda: (b := sdk.messages.batches.retrieve(created.id)).processing_status == "ended" and b,
                     "the batch to end")
    assert batch.request_counts.model_dump() == {"processing": 0, "succeeded": 2, "errored": 1, "canceled": 0,
                                                 "expired": 0}
    assert batch.results_url == f"{live.url}/v1/messages/batches/{created.id}/results"
    assert batch.ended_at >= batch.created_at and batch.cancel_initiated_at is None and batch.archived_at is None
    found = {r.custom_id: r.result for r in sdk.messages.batches.results(created.id)}
    assert set(found) == {"first", "second", "bad"}
    first, second, bad = found["first"], found["second"], found["bad"]
    assert first.type == "succeeded" and isinstance(first.message, anthropic.types.Message)
    assert [b.text for b in first.message.content] == ["Hello there"]
    assert first.message.usage.input_tokens == 3 and first.message.usage.service_tier == "batch"
    assert second.type == "succeeded" and second.message.model == "claude-sonnet-4-5"
    assert second.message.usage.input_tokens == 4
    assert bad.type == "errored" and bad.error.type == "error"
    assert bad.error.error.type == "not_found_error" and bad.error.error.message.startswith("model: gpt-4o")
    # Batch work is background work: the engine admits it after interactive requests.
    assert len(live.engine.requests) == 2 and all(r.background for r in live.engine.requests)
    assert sorted(r.sampling.temperature for r in live.engine.requests) == [0, 1]    # params pass through whole


def test_sdk_cancel_then_delete(sdk, live):
    live.engine.ready = False          # nothing starts: every request is still queued when the cancel comes
    created = sdk.messages.batches.create(requests=batch_requests(3))
    canceling = sdk.messages.batches.cancel(created.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    assert canceling.results_url is None
    ended = wait_for(lambda: (b := sdk.messages.batches.retrieve(created.id)).processing_status == "ended" and b,
                     "the batch to end")
    assert ended.request_counts.canceled == 3 and ended.request_counts.processing == 0
    assert [r.result.type for r in sdk.messages.batches.results(created.id)] == ["canceled"] * 3
    deleted = sdk.messages.batches.delete(created.id)
    assert (deleted.id, deleted.type) == (created.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.batches.retrieve(created.id)
    assert live.engine.requests == []


def test_sdk_lists_newest_first_and_pages_both_ways(sdk, live):
    live.engine.ready = False
    ids = [sdk.messages.batches.create(requests=batch_requests(1)).id for _ in range(5)]
    newest_first = ids[::-1]
    first_page = sdk.messages.batches.list(limit=2)
    assert [b.id for b in first_page.data] == newest_first[:2] and first_page.has_more
    assert (first_page.first_id, first_page.last_id) == tuple(newest_first[0:2])
    assert [b.id for b in sdk.messages.batches.list(limit=2).iter_pages()
            for b in b.data] == newest_first                    # the SDK follows after_id=last_id
    assert [b.id for b in sdk.messages.batches.list(limit=2)] == newest_first
    backward = sdk.messages.batches.list(limit=2, before_id=ids[0])
    assert [b.id for b in backward.data] == [ids[2], ids[1]] and backward.has_more
    assert [b.id for b in backward.get_next_page().data] == [ids[4], ids[3]]
    last = sdk.messages.batches.list(limit=2, after_id=ids[1])
    assert [b.id for b in last.data] == [ids[0]] and not last.has_more
    with pytest.raises(anthropic.AnthropicError, match="No `results_url`"):
        sdk.messages.batches.results(ids[0])          # the SDK itself refuses while results_url is null
    for batch_id in ids:
        sdk.messages.batches.cancel(batch_id)


# -- create: the envelope -----------------------------------------------------------------------------------------

def test_batch_object_at_create(apps):
    client = apps(FakeEngine(ready=False)).test_client()
    batch = create_batch(client, batch_requests(2))
    assert list(batch) == ["id", "type", "processing_status", "request_counts", "ended_at", "created_at",
                           "expires_at", "archived_at", "cancel_initiated_at", "results_url", "thinkserve"]
    assert batch["type"] == "message_batch" and batch["processing_status"] == "in_progress"
    assert batch["request_counts"] == {"processing": 2, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    assert batch["ended_at"] is batch["archived_at"] is batch["cancel_initiated_at"] is batch["results_url"] is None
    created, expires = (datetime.fromisoformat(batch[k].replace("Z", "+00:00")) for k in ("created_at", "expires_at"))
    assert batch["created_at"].endswith("Z") and expires - created == timedelta(hours=24)
    assert batch["thinkserve"]["queued"] == 2 and batch["thinkserve"]["output_tokens"] == 0
    assert retrieve(client, batch["id"])["id"] == batch["id"]


@pytest.mark.parametrize("payload, message", [
    ({}, "requests: Field required"),
    ({"requests": []}, "requests: List should have at least 1 item after validation, not 0"),
    ({"requests": {"custom_id": "a"}}, "requests: Input should be a valid list"),
    ({"requests": [{"params": body()}]}, "requests.0.custom_id: Field required"),
    ({"requests": [{"custom_id": "ok", "params": body()}, {"custom_id": "has space", "params": body()}]},
     "requests.1.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"),
    ({"requests": [{"custom_id": "x" * 65, "params": body()}]},
     "requests.0.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"),
    ({"requests": [{"custom_id": 7, "params": body()}]}, "requests.0.custom_id: Input should be a valid string"),
    ({"requests": [{"custom_id": "a"}]}, "requests.0.params: Field required"),
    ({"requests": [{"custom_id": "a", "params": "hi"}]}, "requests.0.params: Input should be a valid dictionary"),
    ({"requests": [{"custom_id": "a", "params": body()}, {"custom_id": "a", "params": body()}]},
     "requests.1.custom_id: custom_id 'a' is used by an earlier request; each custom_id must be unique within "
     "the batch"),
    ({"requests": [{"custom_id": "a", "params": body(stream=True)}]},
     "requests.0.params.stream: streaming is not supported in a batch"),
    ({"requests": [{"custom_id": "a", "params": body(speed="fast")}]},
     "requests.0.params.speed: is not supported in a batch"),
])
def test_malformed_envelope_is_400(apps, payload, message):
    client = apps().test_client()
    assert_error(client.post("/v1/messages/batches", json=payload), 400, "invalid_request_error", message)
    assert client.get("/v1/messages/batches").get_json()["data"] == []       # nothing was stored


def test_a_batch_may_hold_100000_requests_and_no_more(apps):
    client = apps(FakeEngine(ready=False)).test_client()
    too_many = [{"custom_id": f"r{i}", "params": {}} for i in range(100_001)]
    assert_error(client.post("/v1/messages/batches", json={"requests": too_many}), 400, "invalid_request_error",
                 "requests: List should have at most 100000 items after validation, not 100001")
    batch = create_batch(client, too_many[:100_000])
    assert batch["request_counts"]["processing"] == 100_000
    client.post(f"/v1/messages/batches/{batch['id']}/cancel")
    assert wait_ended(client, batch["id"])["request_counts"]["canceled"] == 100_000


def test_batch_body_limit_is_its_own(apps):
    client = apps(FakeEngine(ready=False), max_request_bytes=2000, max_batch_request_bytes=100_000).test_client()
    requests = batch_requests(30)            # about 3 kB: over the Messages limit, under the batch one
    assert len(json.dumps({"requests": requests})) > 2000
    create_batch(client, requests)
    assert_error(client.post("/v1/messages/batches", json={"requests": batch_requests(2000)}), 413,
                 "request_too_large")


# -- each request runs as POST /v1/messages would ------------------------------------------------------------------

@pytest.mark.parametrize("params", [
    body(model="gpt-4o"),                                                     # unknown model: 404
    body(max_tokens=...),                                                     # missing field
    body(max_tokens=0),
    body(thinking={"type": "enabled", "budget_tokens": 10}),                 # budget under the minimum
    body(messages=[{"role": "user", "content": "word " * 50}], max_tokens=4050),   # context too long
    body(messages=[{"role": "user", "content": [{"type": "video"}]}]),
])
def test_invalid_params_end_errored_with_the_messages_error(apps, params):
    client = apps(FakeEngine()).test_client()
    direct = client.post("/v1/messages", json=params)
    assert direct.status_code in (400, 404)
    batch = create_batch(client, [{"custom_id": "good", "params": body()}, {"custom_id": "bad", "params": params}])
    ended = wait_ended(client, batch["id"])
    assert ended["request_counts"] == {"processing": 0, "succeeded": 1, "errored": 1, "canceled": 0, "expired": 0}
    found = results(client, batch["id"])
    assert found["good"]["type"] == "succeeded"
    error = found["bad"]["error"]
    assert found["bad"]["type"] == "errored" and list(error) == ["type", "error", "request_id"]
    assert error["type"] == "error" and error["request_id"].startswith("req_")
    assert error["error"] == direct.get_json()["error"]


def test_results_and_delete_before_the_end_are_400(apps):
    client = apps(FakeEngine(ready=False)).test_client()
    batch_id = create_batch(client, batch_requests(1))["id"]
    message = assert_error(client.get(f"/v1/messages/batches/{batch_id}/results"), 400, "invalid_request_error")
    assert "has not finished processing" in message
    message = assert_error(client.delete(f"/v1/messages/batches/{batch_id}"), 400, "invalid_request_error")
    assert "cannot be deleted while it is in_progress" in message
    assert retrieve(client, batch_id)["processing_status"] == "in_progress"


@pytest.mark.parametrize("method, suffix", [("get", ""), ("post", "/cancel"), ("delete", ""), ("get", "/results")])
def test_unknown_batch_is_404(apps, method, suffix):
    client = apps().test_client()
    assert_error(getattr(client, method)(f"/v1/messages/batches/msgbatch_nope{suffix}"), 404, "not_found_error",
                 "message batch 'msgbatch_nope' not found")


@pytest.mark.parametrize("query, message", [
    ("limit=0", "limit: Input should be between 1 and 1000"),
    ("limit=1001", "limit: Input should be between 1 and 1000"),
    ("after_id=msgbatch_nope", "after_id: no message batch with id 'msgbatch_nope' to page from"),
    ("after_id=a&before_id=b", "after_id and before_id cannot be used together"),
])
def test_bad_list_query_is_400(apps, query, message):
    assert_error(apps().test_client().get(f"/v1/messages/batches?{query}"), 400, "invalid_request_error", message)


# -- counts, cancellation, concurrency, expiry ---------------------------------------------------------------------

def test_counts_stay_processing_until_the_end_and_cancel_stops_the_running_request(apps):
    engine = FakeEngine()
    client = apps(engine, batch_concurrency=1).test_client()
    engine.script([TextDelta("quick")])
    engine.script(SLOW, delay_s=60)
    batch_id = create_batch(client, batch_requests(3))["id"]
    progress = wait_for(lambda: (b := retrieve(client, batch_id))["thinkserve"]["succeeded"] == 1
                        and b["thinkserve"]["running"] == 1 and b, "one request done and the next running")
    # Anthropic's semantics: nothing but `processing` moves until the whole batch has ended.
    assert progress["request_counts"] == {"processing": 3, "succeeded": 0, "errored": 0, "canceled": 0,
                                          "expired": 0}
    assert progress["thinkserve"]["queued"] == 1 and progress["thinkserve"]["output_tokens"] == 1
    canceling = client.post(f"/v1/messages/batches/{batch_id}/cancel").get_json()
    assert canceling["processing_status"] == "canceling" and canceling["cancel_initiated_at"] is not None
    assert canceling["results_url"] is None and canceling["request_counts"]["processing"] == 3
    ended = wait_ended(client, batch_id)
    assert ended["request_counts"] == {"processing": 0, "succeeded": 1, "errored": 0, "canceled": 2, "expired": 0}
    assert engine.handles[1].cancelled.is_set() and len(engine.handles) == 2   # the third never started
    assert {k: v["type"] for k, v in results(client, batch_id).items()} == {
        "req-0": "succeeded", "req-1": "canceled", "req-2": "canceled"}
    assert ended["cancel_initiated_at"] == canceling["cancel_initiated_at"]
    # A second cancel changes nothing on an ended batch.
    assert client.post(f"/v1/messages/batches/{batch_id}/cancel").get_json() == retrieve(client, batch_id)


def test_batch_concurrency_bounds_the_requests_running_at_once(apps):
    engine = FakeEngine()
    client = apps(engine, batch_concurrency=3).test_client()
    for _ in range(6):
        engine.script(SLOW, delay_s=60)
    batch_id = create_batch(client, batch_requests(6))["id"]
    wait_for(lambda: retrieve(client, batch_id)["thinkserve"]["running"] == 3, "three requests running")
    client.post(f"/v1/messages/batches/{batch_id}/cancel")
    assert wait_ended(client, batch_id)["request_counts"]["canceled"] == 6
    assert len(engine.handles) == 3 and all(h.cancelled.is_set() for h in engine.handles)


def test_requests_not_done_by_expires_at_end_expired(apps):
    client = apps(FakeEngine(ready=False), batch_expiry_hours=0.5 / 3600).test_client()
    batch = create_batch(client, batch_requests(3))
    ended = wait_ended(client, batch["id"])
    assert ended["request_counts"] == {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 3}
    assert ended["cancel_initiated_at"] is None
    assert {r["type"] for r in results(client, batch["id"]).values()} == {"expired"}


def test_a_running_request_is_stopped_when_its_batch_expires(apps):
    engine = FakeEngine()
    client = apps(engine, batch_concurrency=1, batch_expiry_hours=1 / 3600).test_client()
    engine.script(SLOW, delay_s=60)
    batch_id = create_batch(client, batch_requests(2))["id"]
    ended = wait_ended(client, batch_id)
    assert ended["request_counts"]["expired"] == 2
    assert all(h.cancelled.is_set() for h in engine.handles)   # whichever had started was stopped


# -- durability ---------------------------------------------------------------------------------------------------

def test_a_new_app_reruns_what_a_crashed_one_left_running_exactly_once(apps, tmp_path):
    crashed = apps(FakeEngine(ready=False))
    batch_id = create_batch(crashed.test_client(), batch_requests(5))["id"]
    crashed.extensions["thinkserve.batches"].close()
    # What the crashed process had done: two requests claimed (running) and one of them finished.
    store = BatchStore(tmp_path / "batches.sqlite3")
    first, second = store.claim(2, now=time.time())
    store.finish(first, {"type": "succeeded", "message": {"id": "msg_before_the_crash"}}, now=time.time())
    store.close()     # the process "dies": its lock on the store goes with it

    engine = FakeEngine()
    client = apps(engine).test_client()           # same data dir: it finds the batch and goes on with it
    ended = wait_ended(client, batch_id)
    assert ended["request_counts"]["succeeded"] == 5
    found = results(client, batch_id)
    assert sorted(found) == [f"req-{i}" for i in range(5)]
    assert found["req-0"]["message"]["id"] == "msg_before_the_crash"     # a result is never redone
    assert len(engine.requests) == 4                                     # the running one ran again, once


def test_a_second_server_on_the_same_data_dir_refuses_batches_rather_than_run_them_twice(apps):
    first = apps(FakeEngine(ready=False)).test_client()
    batch_id = create_batch(first, batch_requests(1))["id"]
    second = apps(FakeEngine()).test_client()
    message = assert_error(second.get(f"/v1/messages/batches/{batch_id}"), 503, "api_error")
    assert "give it its own --data-dir" in message
    assert second.post("/v1/messages", json=body()).status_code == 200       # everything else is served


def test_store_recover_queues_running_requests_and_gives_up_after_max_attempts(tmp_path):
    store = BatchStore(tmp_path / "b.sqlite3")
    store.create("msgbatch_x", [("only", body())], now=time.time(), expires_at=time.time() + 3600)
    for _ in range(MAX_ATTEMPTS - 1):
        assert [c.custom_id for c in store.claim(5, now=time.time())] == ["only"]
        assert store.recover() == 1
    (claimed,) = store.claim(5, now=time.time())
    store.recover()                                # the last attempt died too: it ends errored
    store.sweep(now=time.time())
    record = store.get("msgbatch_x")
    assert record.ended_at is not None and record.counts["errored"] == 1
    assert not store.finish(claimed, {"type": "succeeded", "message": {}}, now=time.time())   # written once only
    (_, result), = store.results("msgbatch_x")
    assert json.loads(result)["error"]["error"]["type"] == "api_error"


def test_cancel_answers_with_the_state_it_made_even_when_the_runner_ends_the_batch_at_once(tmp_path, monkeypatch):
    # Found by CI: the runner's sweep could end a batch of queued requests between the cancel's write and its
    # read-back, and the cancel then answered "ended" (Anthropic's answer to a cancel is "canceling").
    store = BatchStore(tmp_path / "b.sqlite3")
    store.create("msgbatch_x", [("a", body()), ("b", body())], now=time.time(), expires_at=time.time() + 3600)
    original_write = store._write

    @contextlib.contextmanager
    def write_then_runner_sweeps():
        with original_write() as conn:
            yield conn
        monkeypatch.setattr(store, "_write", original_write)
        store.sweep(now=time.time())             # the runner, woken at once, ends the batch
    monkeypatch.setattr(store, "_write", write_then_runner_sweeps)
    record = store.cancel("msgbatch_x", now=time.time())
    assert record.cancel_initiated_at is not None and record.ended_at is None      # "canceling"
    assert record.counts["canceled"] == 2
    assert store.get("msgbatch_x").ended_at is not None                             # and then it ended
