"""GET /: the playground, a page that composes a request, streams it and shows what crosses the wire.

The page itself needs no API key (it holds no data); the key the user types in it is sent with every /v1 call."""
from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("playground", __name__)


@bp.get("/")
def playground():
    return render_template("playground.html")
