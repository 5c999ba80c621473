"""The playground shows a cited answer inline: each cited claim's superscript mark carries the passage's exact text
on hover. The stream is the server's own assembly of scripted engine events (the default model cites too rarely
to wait for), answered to the page through Playwright's routing; the page itself is served by the real server."""
from __future__ import annotations

import shutil

import pytest

from browser_helpers import CHROMIUM, OUTPUT

if not shutil.which(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing (`make setup-dev` installs it)", allow_module_level=True)
expect = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements-dev.txt").expect

from app.api.citations.assembly import block_assembler  # noqa: E402
from app.api.stream import message_skeleton, sse  # noqa: E402
from app.engine.events import CitationMark, Finished, StopReason, TextDelta, Usage  # noqa: E402

GRASS = {"type": "char_location", "cited_text": "The grass is green. ", "document_index": 0,
         "document_title": "My Document", "start_char_index": 0, "end_char_index": 20, "file_id": None}
SKY = {**GRASS, "cited_text": "The sky is blue.", "start_char_index": 20, "end_char_index": 36}


def cited_stream() -> str:
    assembler = block_assembler(7, citations=(GRASS, SKY), sign_thinking=lambda text: "")
    events = [("message_start", {"type": "message_start", "message": message_skeleton("msg_cited", "m", 7)})]
    for event in [TextDelta("The grass is green"), CitationMark(1), TextDelta(" and the sky is blue"),
                  CitationMark(2), CitationMark(1), TextDelta("."), Finished(StopReason.END, Usage(7, 9))]:
        events += assembler.feed(event)
    return b"".join(sse(name, data) for name, data in events).decode()


def test_a_cited_answer_reads_as_one_paragraph_with_marks_that_show_the_cited_text(page):
    page.route("**/v1/messages", lambda route: route.fulfill(
        status=200, headers={"content-type": "text/event-stream"}, body=cited_stream()))
    page.click("#send")
    expect(page.locator("#events .event").last).to_have_class("event event-message_stop")
    message = page.locator("#message")
    expect(message).to_have_text("The grass is green[1] and the sky is blue[2][1].")
    marks = page.locator("#message sup.cite")
    expect(marks).to_have_count(3)
    expect(marks.nth(0)).to_have_attribute("title", "“The grass is green.” — My Document")
    expect(marks.nth(1)).to_have_attribute("title", "“The sky is blue.” — My Document")
    # One line: the text blocks flow inline.
    boxes = [page.locator("#message .block.text").nth(i).bounding_box() for i in range(3)]
    assert len({round(box["y"]) for box in boxes}) == 1
    marks.nth(1).hover()
    page.locator("#message").screenshot(path=str(OUTPUT / "playground-citations.png"))
