"""/v1/messages/batches: create, retrieve, list, cancel, delete, and the results as JSONL."""
from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, request, url_for

from ...service.ids import new_id
from ..errors import InvalidRequestError, NotFoundError, NotReadyError
from ..http import json_response, request_json
from ..models import list_limit
from .objects import batch_object, parse_create_body, processing_status, result_line
from .store import BatchRecord

bp = Blueprint("batches", __name__)


def batches():
    """The app's `Batches` (store, runner, settings), installed by `app.api.batches.install`."""
    service = current_app.extensions["thinkserve.batches"]
    if service.unavailable:
        raise NotReadyError(service.unavailable)
    return service


def _present(record: BatchRecord) -> dict:
    url = url_for("batches.batch_results", batch_id=record.id, _external=True)   # the host the client reached
    return batch_object(record, results_url=url, live_output_tokens=batches().runner.live_output_tokens(record.id))


def _existing(batch_id: str) -> BatchRecord:
    record = batches().store.get(batch_id)
    if record is None:
        raise NotFoundError(f"message batch {batch_id!r} not found")
    return record


@bp.post("/v1/messages/batches")
def create_batch():
    requests = parse_create_body(request_json())
    service = batches()
    now = time.time()
    record = service.store.create(new_id("msgbatch_"), requests, now=now,
                                  expires_at=now + service.expiry_hours * 3600)
    service.runner.wake()
    return json_response(_present(record))


@bp.get("/v1/messages/batches")
def list_batches():
    after_id, before_id = request.args.get("after_id"), request.args.get("before_id")
    if after_id and before_id:
        raise InvalidRequestError("after_id and before_id cannot be used together")
    page = batches().store.list(limit=list_limit(), after_id=after_id, before_id=before_id)
    if page is None:
        raise InvalidRequestError(f"{'after_id' if after_id else 'before_id'}: no message batch with id "
                                  f"{after_id or before_id!r} to page from")
    records, has_more = page
    data = [_present(record) for record in records]
    return json_response({"data": data, "has_more": has_more, "first_id": data[0]["id"] if data else None,
                          "last_id": data[-1]["id"] if data else None})


@bp.get("/v1/messages/batches/<batch_id>")
def retrieve_batch(batch_id: str):
    return json_response(_present(_existing(batch_id)))


@bp.post("/v1/messages/batches/<batch_id>/cancel")
def cancel_batch(batch_id: str):
    _existing(batch_id)
    service = batches()
    record = service.store.cancel(batch_id, now=time.time())
    service.runner.wake()    # running requests are stopped by the runner, which ends the batch once they are
    return json_response(_present(record))


@bp.delete("/v1/messages/batches/<batch_id>")
def delete_batch(batch_id: str):
    record = _existing(batch_id)
    if record.ended_at is None:
        raise InvalidRequestError(f"message batch {batch_id} cannot be deleted while it is "
                                  f"{processing_status(record)}; cancel it first and wait until it has ended")
    batches().store.delete(batch_id)
    return json_response({"id": batch_id, "type": "message_batch_deleted"})


@bp.get("/v1/messages/batches/<batch_id>/results")
def batch_results(batch_id: str):
    record = _existing(batch_id)
    if record.ended_at is None:
        raise InvalidRequestError(f"message batch {batch_id} has not finished processing "
                                  f"(processing_status: {processing_status(record)}); results are available "
                                  f"once it has ended")
    # Streamed a chunk of rows at a time: a batch of 100,000 results never sits in memory whole.
    lines = (result_line(custom_id, result) for custom_id, result in batches().store.results(batch_id))
    return Response(lines, mimetype="application/x-jsonl",
                    headers={"Content-Disposition": f'attachment; filename="{batch_id}_results.jsonl"'})
