"""GET /v1/models and /v1/models/{id} in Anthropic's shapes, and the cursor pagination the SDKs walk."""
from __future__ import annotations

import re
from datetime import datetime

import pytest

from app.api.errors import InvalidRequestError
from app.api.models import page

from api_helpers import MODEL, assert_error

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def check_model_info(info: dict) -> None:
    assert info["type"] == "model" and info["id"] == MODEL
    assert isinstance(info["display_name"], str) and info["display_name"]
    assert RFC3339.fullmatch(info["created_at"])
    assert datetime.fromisoformat(info["created_at"]).tzinfo is not None
    assert info["max_input_tokens"] == 4096


@pytest.mark.parametrize("query", ["", "?limit=1000", "?limit=1", "?beta=true", "?lifecycle[]=active"])
def test_list_shape(client, query):
    response = client.get("/v1/models" + query)
    assert response.status_code == 200 and response.mimetype == "application/json"
    listing = response.get_json()
    assert list(listing) == ["data", "has_more", "first_id", "last_id"]
    assert len(listing["data"]) == 1
    check_model_info(listing["data"][0])
    assert (listing["has_more"], listing["first_id"], listing["last_id"]) == (False, MODEL, MODEL)


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "limit=", "limit=-1", "limit=2.5"])
def test_bad_limit_is_400(client, query):
    assert assert_error(client.get("/v1/models?" + query), 400, "invalid_request_error").startswith("limit: ")


@pytest.mark.parametrize("cursor", ["after_id", "before_id"])
def test_cursor_on_the_only_model_gives_an_empty_last_page(client, cursor):
    listing = client.get(f"/v1/models?{cursor}={MODEL}").get_json()
    assert listing == {"data": [], "has_more": False, "first_id": None, "last_id": None}


def test_unknown_cursor_is_400(client):
    assert_error(client.get("/v1/models?after_id=nope"), 400, "invalid_request_error")


@pytest.mark.parametrize("name", [MODEL, "claude-sonnet-4-5", "claude-opus-5-5", "claude-3-5-haiku-20241022"])
def test_retrieve_by_id_or_alias(client, name):
    response = client.get(f"/v1/models/{name}")
    assert response.status_code == 200
    check_model_info(response.get_json())
    assert response.get_json() == client.get("/v1/models").get_json()["data"][0]


@pytest.mark.parametrize("name", ["gpt-4o", "fake-model-2", "org/fake-model"])
def test_retrieve_unknown_is_404(client, name):
    assert name in assert_error(client.get(f"/v1/models/{name}"), 404, "not_found_error")


def test_aliases_are_configurable(make_app):
    client = make_app(alias=("local-*", "gpt-4o")).test_client()
    assert client.get("/v1/models/local-qwen").status_code == 200
    assert client.get("/v1/models/gpt-4o").status_code == 200
    assert_error(client.get("/v1/models/claude-sonnet-4-5"), 404, "not_found_error")
    response = client.post("/v1/messages", json={"model": "local-qwen", "max_tokens": 5,
                                                 "messages": [{"role": "user", "content": "hi"}]})
    assert response.get_json()["model"] == "local-qwen"


def test_alias_target_must_be_the_served_model(make_app):
    with pytest.raises(ValueError):
        make_app(alias=("claude-*=other-model",))
    assert make_app(alias=(f"claude-*={MODEL}",)).test_client().get("/v1/models/claude-x").status_code == 200


# --- page(): the pagination rule on its own ----------------------------------------------------------------

ITEMS = [{"id": i} for i in "abcde"]


def ids(result):
    return [item["id"] for item in result["data"]], result["has_more"], result["first_id"], result["last_id"]


def test_page_walks_forward_with_after_id():
    walked, cursor, pages = [], None, 0
    while True:
        result = page(ITEMS, limit=2, after_id=cursor, before_id=None)
        pages += 1
        walked += [item["id"] for item in result["data"]]
        if not result["has_more"]:
            break
        cursor = result["last_id"]
    assert walked == list("abcde") and pages == 3
    assert ids(page(ITEMS, limit=2, after_id=None, before_id=None)) == (["a", "b"], True, "a", "b")
    assert ids(page(ITEMS, limit=2, after_id="c", before_id=None)) == (["d", "e"], False, "d", "e")
    assert ids(page(ITEMS, limit=5, after_id=None, before_id=None)) == (list("abcde"), False, "a", "e")
    assert ids(page(ITEMS, limit=9, after_id="e", before_id=None)) == ([], False, None, None)


def test_page_walks_backward_with_before_id():
    assert ids(page(ITEMS, limit=2, after_id=None, before_id="e")) == (["c", "d"], True, "c", "d")
    assert ids(page(ITEMS, limit=2, after_id=None, before_id="c")) == (["a", "b"], False, "a", "b")
    assert ids(page(ITEMS, limit=3, after_id=None, before_id="b")) == (["a"], False, "a", "a")
    assert ids(page(ITEMS, limit=2, after_id=None, before_id="a")) == ([], False, None, None)
    walked, cursor = [], "e"
    while True:
        result = page(ITEMS, limit=2, after_id=None, before_id=cursor)
        walked = [item["id"] for item in result["data"]] + walked
        if not result["has_more"]:
            break
        cursor = result["first_id"]
    assert walked == list("abcd")


def test_page_rejects_an_unknown_cursor():
    with pytest.raises(InvalidRequestError):
        page(ITEMS, limit=2, after_id="z", before_id=None)
    with pytest.raises(InvalidRequestError):
        page(ITEMS, limit=2, after_id=None, before_id="z")
