"""The playground page at /: served without a key, every file it loads is served, and nothing comes from the
internet (users may be offline). What the page does is tested in a real browser in tests/browser."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "static"
MIMETYPES = {".js": "text/javascript", ".css": "text/css"}


@pytest.fixture
def keyed(make_app):
    return make_app(api_key="k").test_client()


def test_page_needs_no_key(keyed):
    page = keyed.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "thinkserve playground" in page.get_data(as_text=True)
    assert page.headers["request-id"].startswith("req_")


def test_the_api_still_needs_the_key(keyed):
    assert keyed.get("/v1/models").status_code == 401


def local_references(client) -> set[str]:
    """Every URL the page loads: its stylesheet and script, and every ES module those import, transitively."""
    html = client.get("/").get_data(as_text=True)
    pending = set(re.findall(r'(?:href|src)="(/static/[^"]+)"', html))
    seen = set()
    while pending:
        url = pending.pop()
        seen.add(url)
        if url.endswith(".js"):
            source = client.get(url).get_data(as_text=True)
            folder = url.rsplit("/", 1)[0]
            for name in re.findall(r'from "\./([^"]+)"', source):
                pending |= {f"{folder}/{name}"} - seen
    return seen


def test_every_file_the_page_loads_is_served(keyed):
    urls = local_references(keyed)
    assert "/static/js/main.js" in urls and "/static/js/sse.js" in urls and "/static/playground.css" in urls
    for url in urls:
        response = keyed.get(url)
        assert response.status_code == 200, url
        assert response.mimetype == MIMETYPES[Path(url).suffix], url


def test_nothing_is_loaded_from_the_internet(client):
    # A CDN link would leave an offline user with a broken page.
    sources = [client.get("/").get_data(as_text=True)] + [p.read_text() for p in STATIC.rglob("*") if p.is_file()]
    for source in sources:
        assert not re.search(r"https?://", source)


def test_missing_static_file_is_404_in_the_envelope(client):
    response = client.get("/static/js/nope.js")
    assert response.status_code == 404
    assert response.get_json()["error"]["type"] == "not_found_error"
