"""Cited answers over the wire, on the fake engine: citation marks become text blocks with Anthropic's citations,
non-streamed and streamed (`citations_delta`), and the official SDK reads every kind of citation and its stream
helper assembles the same message as the non-streamed response."""
from __future__ import annotations

import pytest
from citation_checks import check_citation
from citation_requests import GRASS, GRASS_CITATIONS, ON, QUESTION, pdf_document, search_result

from app.engine.events import BlockEnd, CitationMark, TextDelta, ThinkingDelta

from api_helpers import accumulate, body, stream

ANSWER = [TextDelta("According to the document, "), TextDelta("the grass is green"), CitationMark(1),
          TextDelta(" and the sky is blue"), CitationMark(2), TextDelta(".")]
CITED_CONTENT = [
    {"type": "text", "text": "According to the document, the grass is green", "citations": [GRASS_CITATIONS[0]]},
    {"type": "text", "text": " and the sky is blue", "citations": [GRASS_CITATIONS[1]]},
    {"type": "text", "text": "."}]


def cited_message(client, engine, script, **fields):
    engine.script(list(script))
    response = client.post("/v1/messages", json=body(messages=[{"role": "user", "content": [GRASS, QUESTION]}],
                                                     **fields))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def cited_stream(client, engine, script, **fields):
    engine.script(list(script))
    return stream(client, messages=[{"role": "user", "content": [GRASS, QUESTION]}], **fields)


def test_each_cited_claim_is_a_text_block_with_its_citations(client, engine):
    assert cited_message(client, engine, ANSWER)["content"] == CITED_CONTENT


def test_the_stream_sends_citations_deltas_and_folds_into_the_same_message(client, engine):
    events = cited_stream(client, engine, ANSWER)
    blocks = [data for name, data in events if name.startswith("content_block")]
    assert blocks == [
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta",
                                                              "text": "According to the document, "}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "the grass is green"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta",
                                                              "citation": GRASS_CITATIONS[0]}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": " and the sky is blue"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta",
                                                              "citation": GRASS_CITATIONS[1]}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "."}},
        {"type": "content_block_stop", "index": 2}]
    assert accumulate(events)["content"] == CITED_CONTENT


@pytest.mark.parametrize("script, content", [
    # Marks in a row cite the same text.
    ([TextDelta("Both"), CitationMark(1), CitationMark(2), TextDelta(" hold.")],
     [{"type": "text", "text": "Both", "citations": list(GRASS_CITATIONS)}, {"type": "text", "text": " hold."}]),
    # A mark before any text goes with the first block, which runs on to the next mark.
    ([CitationMark(2), TextDelta("The sky is blue, the grass green"), CitationMark(1)],
     [{"type": "text", "text": "The sky is blue, the grass green", "citations": [GRASS_CITATIONS[1],
                                                                                 GRASS_CITATIONS[0]]}]),
    # After thinking, the answer's blocks are cited the same way.
    ([ThinkingDelta("Look."), BlockEnd(), TextDelta("Green"), CitationMark(1)],
     [{"type": "thinking", "thinking": "Look."}, {"type": "text", "text": "Green", "citations": [GRASS_CITATIONS[0]]}]),
], ids=["marks-in-a-row", "mark-first", "after-thinking"])
def test_marks_in_a_row_first_or_after_thinking(client, engine, script, content):
    message = cited_message(client, engine, script)
    got = [{key: value for key, value in block.items() if key != "signature"} for block in message["content"]]
    assert got == content
    streamed = accumulate(cited_stream(client, engine, script))["content"]
    assert [{key: value for key, value in block.items() if key != "signature"} for block in streamed] == content


TOOL_LOOP = [{"role": "user", "content": "Search for it."},
             {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "search", "input": {}}]},
             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                 search_result("Moon", "The Moon orbits the Earth.", "It is far.")]}]}]
SOURCES = {
    "text": ([{"role": "user", "content": [GRASS, QUESTION]}], "CitationCharLocation"),
    "pdf": ([{"role": "user", "content": [pdf_document("Page one. Still one.", "Page two."), QUESTION]}],
            "CitationPageLocation"),
    "content": ([{"role": "user", "content": [{"type": "document", "citations": ON, "source": {
        "type": "content", "content": [{"type": "text", "text": "A."}, {"type": "text", "text": "B."}]}}, QUESTION]}],
                "CitationContentBlockLocation"),
    "search-result": ([{"role": "user", "content": [search_result("Moon", "It orbits.", "It is far."), QUESTION]}],
                      "CitationsSearchResultLocation"),
    "search-result-in-tool-result": (TOOL_LOOP, "CitationsSearchResultLocation"),
}


@pytest.mark.parametrize("source", list(SOURCES))
def test_the_sdk_reads_each_kind_of_citation_streamed_or_not(live, source):
    import anthropic.types as types
    messages, citation_class = SOURCES[source]
    request = {"model": "fake-model", "max_tokens": 50, "messages": messages,
               "tools": [{"name": "search", "input_schema": {"type": "object"}}]}
    script = [TextDelta("One"), CitationMark(1), TextDelta(", two"), CitationMark(2), CitationMark(1),
              TextDelta(".")]
    live.engine.script(list(script))
    created = live.sdk.messages.create(**request)
    live.engine.script(list(script))
    with live.sdk.messages.stream(**request) as sdk_stream:
        final = sdk_stream.get_final_message()
    assert final.model_dump(exclude={"id"}) == created.model_dump(exclude={"id"})
    assert [block.text for block in created.content] == ["One", ", two", "."]
    citations = [citation for block in created.content for citation in block.citations or []]
    assert len(citations) == 3 and all(isinstance(c, getattr(types, citation_class)) for c in citations)
    for citation in citations:
        check_citation(citation.to_dict(), request)


def test_the_sdk_reads_citations_and_its_stream_helper_assembles_the_same_message(live):
    import anthropic.types as types
    messages = [{"role": "user", "content": [GRASS, QUESTION]}]
    live.engine.script(list(ANSWER))
    created = live.sdk.messages.create(model="fake-model", max_tokens=50, messages=messages)
    assert isinstance(created.content[0].citations[0], types.CitationCharLocation)
    assert created.content[0].citations[0].cited_text == "The grass is green. "
    assert created.content[2].citations is None
    live.engine.script(list(ANSWER))
    seen = []
    with live.sdk.messages.stream(model="fake-model", max_tokens=50, messages=messages) as sdk_stream:
        for event in sdk_stream:
            if event.type == "citation":
                seen.append(event.citation.cited_text)
        final = sdk_stream.get_final_message()
    assert seen == ["The grass is green. ", "The sky is blue."]
    assert final.model_dump(exclude={"id"}) == created.model_dump(exclude={"id"})
    assert [block.to_dict() for block in final.content] == CITED_CONTENT
