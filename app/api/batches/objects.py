"""Message Batches on the wire: the create body's envelope, the `message_batch` object, and result lines.

Only the envelope (`requests`, each `custom_id` and `params` being an object) is checked at create, as Anthropic
does: each request's `params` are validated when it runs, by the same code as POST /v1/messages, and an invalid one
ends `errored` with the error that endpoint would have answered.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from ..errors import InvalidRequestError
from ..schema import validate
from .store import BatchRecord

MAX_REQUESTS = 100_000
CUSTOM_ID_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")    # unknown fields are ignored, as everywhere in this API


class BatchRequestItem(_Open):
    custom_id: StrictStr = Field(pattern=CUSTOM_ID_PATTERN)
    params: dict


class BatchCreateBody(_Open):
    requests: list[BatchRequestItem] = Field(min_length=1, max_length=MAX_REQUESTS)


def parse_create_body(body: Any) -> list[tuple[str, dict]]:
    """(custom_id, params) of every request, or an InvalidRequestError whose message starts with the field path."""
    parsed = validate(BatchCreateBody, body, {})
    seen: set[str] = set()
    for i, item in enumerate(parsed.requests):
        if item.custom_id in seen:
            raise InvalidRequestError(f"requests.{i}.custom_id: custom_id {item.custom_id!r} is used by an earlier "
                                      f"request; each custom_id must be unique within the batch")
        seen.add(item.custom_id)
        # Refused here rather than per request: they are about how the batch runs, not about the model's answer.
        if item.params.get("stream") is True:
            raise InvalidRequestError(f"requests.{i}.params.stream: streaming is not supported in a batch")
        if item.params.get("speed") is not None:
            raise InvalidRequestError(f"requests.{i}.params.speed: is not supported in a batch")
    return [(item.custom_id, item.params) for item in parsed.requests]


def rfc3339(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat().replace("+00:00", "Z")


def processing_status(record: BatchRecord) -> str:
    if record.ended_at is not None:
        return "ended"
    return "canceling" if record.cancel_initiated_at is not None else "in_progress"


def batch_object(record: BatchRecord, *, results_url: str, live_output_tokens: int = 0) -> dict:
    """The `message_batch` object. `results_url` is shown only once the batch has ended."""
    ended = record.ended_at is not None
    counts = record.counts
    # Anthropic's semantics: every request counts as processing until the whole batch ends, then as its outcome.
    request_counts = {"processing": 0 if ended else record.total,
                      **{state: counts[state] if ended else 0
                         for state in ("succeeded", "errored", "canceled", "expired")}}
    return {
        "id": record.id,
        "type": "message_batch",
        "processing_status": processing_status(record),
        "request_counts": request_counts,
        "ended_at": rfc3339(record.ended_at),
        "created_at": rfc3339(record.created_at),
        "expires_at": rfc3339(record.expires_at),
        "archived_at": None,          # results are kept until the batch is deleted, never archived
        "cancel_initiated_at": rfc3339(record.cancel_initiated_at),
        "results_url": results_url if ended else None,
        # thinkserve extension: live progress, which the official counts hide until the batch ends.
        "thinkserve": {**{state: counts[state] for state in counts},
                       "output_tokens": record.output_tokens + live_output_tokens},
    }


def result_line(custom_id: str, result_json: str) -> bytes:
    """One JSONL line; the stored result is spliced in as it is, not parsed again. Always ends in exactly one \\n:
    the SDK's decoder drops a last line without one and fails on a blank one."""
    return ('{"custom_id": ' + json.dumps(custom_id) + ', "result": ' + result_json + "}\n").encode()


def succeeded(message: dict) -> dict:
    return {"type": "succeeded", "message": message}


def errored(error_envelope: dict) -> dict:
    return {"type": "errored", "error": error_envelope}
