"""Citations on the prompt side, on the fake engine: what the model is shown (numbered passages, the instructions),
the citation object of every passage (char, page, content block and search result locations, with Anthropic's
indices), what is refused, and that a request without citations is left exactly as it was. The answer side is
test_citations_answer.py."""
from __future__ import annotations

import io

import pytest
from citation_checks import check_citation
from citation_requests import GRASS, GRASS_CITATIONS, ON, QUESTION, pdf_document, search_result

from api_helpers import assert_error, body

def ask(client, engine, *blocks, **fields):
    """POST the blocks (then the question) as one user turn; returns (the engine's request, the JSON body sent)."""
    sent = body(messages=[{"role": "user", "content": [*blocks, QUESTION]}], **fields)
    response = client.post("/v1/messages", json=sent)
    assert response.status_code == 200, response.get_data(as_text=True)
    return engine.requests[-1], sent


# -- what the model reads, and each passage's citation -----------------------------------------------------------

def test_a_text_document_is_numbered_by_sentence_with_anthropics_char_indices(client, engine):
    request, sent = ask(client, engine, GRASS)
    assert request.citations == GRASS_CITATIONS
    system, user = request.messages[0], request.messages[1]
    assert system["role"] == "system" and "[1]" in system["content"] and "square brackets" in system["content"]
    assert user["content"] == ("<document>\n<source>My Document</source>\n<document_content>\n"
                               "[1] The grass is green.\n[2] The sky is blue.\n</document_content>\n</document>"
                               "\n\nWhat colour is the grass?")
    for citation in request.citations:
        check_citation(citation, sent)


def test_the_instructions_follow_the_clients_system_prompt(client, engine):
    request, _ = ask(client, engine, GRASS, system="Be brief.")
    assert request.messages[0]["content"].startswith("Be brief.\n\nThe documents and search results")


def test_a_cache_breakpoint_on_a_citable_source_is_kept(client, engine):
    sent = body(messages=[{"role": "user", "content": [{**GRASS, "cache_control": {"type": "ephemeral"}}, QUESTION]}])
    usage = client.post("/v1/messages", json=sent).get_json()["usage"]
    assert usage["input_tokens"] == 0 and usage["cache_creation_input_tokens"] > 0
    assert engine.requests[-1].citations == GRASS_CITATIONS


def test_a_pdf_is_cited_by_page(client, engine):
    request, sent = ask(client, engine, pdf_document("First page. Still first.", "Second page here.", title="Deck"))
    assert [(c["type"], c["cited_text"], c["start_page_number"], c["end_page_number"], c["document_title"])
            for c in request.citations] == [("page_location", "First page. ", 1, 2, "Deck"),
                                            ("page_location", "Still first.", 1, 2, "Deck"),
                                            ("page_location", "Second page here.", 2, 3, "Deck")]
    assert ('<page number="1">\n[1] First page.\n[2] Still first.\n</page>\n<page number="2">\n'
            '[3] Second page here.\n</page>') in request.messages[1]["content"]
    for citation in request.citations:
        check_citation(citation, sent)


def test_a_custom_content_document_is_cited_by_block(client, engine):
    content = {"type": "document", "citations": ON, "source": {"type": "content", "content": [
        {"type": "text", "text": "First chunk, not split. Really."}, {"type": "text", "text": "Second chunk."}]}}
    request, sent = ask(client, engine, content)
    assert request.citations == (
        {"type": "content_block_location", "cited_text": "First chunk, not split. Really.", "document_index": 0,
         "document_title": None, "start_block_index": 0, "end_block_index": 1, "file_id": None},
        {"type": "content_block_location", "cited_text": "Second chunk.", "document_index": 0,
         "document_title": None, "start_block_index": 1, "end_block_index": 2, "file_id": None})
    for citation in request.citations:
        check_citation(citation, sent)


def test_a_file_documents_citations_name_the_file(client, engine):
    response = client.post("/v1/files", data={"file": (io.BytesIO(b"Rain is wet. Snow is cold."), "w.txt",
                                                       "text/plain")})
    file_id = response.get_json()["id"]
    request, _ = ask(client, engine, {"type": "document", "citations": ON,
                                      "source": {"type": "file", "file_id": file_id}})
    assert [(c["cited_text"], c["start_char_index"], c["file_id"]) for c in request.citations] == [
        ("Rain is wet. ", 0, file_id), ("Snow is cold.", 13, file_id)]


def test_indices_count_every_document_and_every_search_result_in_request_order(client, engine):
    """document_index counts document blocks and search_result_index search results, each on its own, across turns
    and tool results; a search result with citations off still counts, and is shown without numbers."""
    tools = [{"name": "search", "input_schema": {"type": "object"}}]
    messages = [
        {"role": "user", "content": [GRASS, search_result("Off", "Not citable.", citations=None),
                                     {"type": "text", "text": "Look it up."}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "search", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                search_result("Moon", "The Moon orbits the Earth.", "It is far."),
                {**GRASS, "title": "Second", "source": {"type": "text", "media_type": "text/plain",
                                                        "data": "Water is wet."}}]},
            search_result("Sun", "The Sun is a star.")]}]
    sent = body(messages=messages, tools=tools)
    assert client.post("/v1/messages", json=sent).status_code == 200
    citations = engine.requests[-1].citations
    assert [(c["type"], c.get("document_index", c.get("search_result_index")), c["cited_text"])
            for c in citations] == [
        ("char_location", 0, "The grass is green. "), ("char_location", 0, "The sky is blue."),
        ("search_result_location", 1, "The Moon orbits the Earth."), ("search_result_location", 1, "It is far."),
        ("char_location", 1, "Water is wet."), ("search_result_location", 2, "The Sun is a star.")]
    assert citations[2] == {"type": "search_result_location", "cited_text": "The Moon orbits the Earth.",
                            "search_result_index": 1, "source": "https://example.com/moon", "title": "Moon",
                            "start_block_index": 0, "end_block_index": 1}
    for citation in citations:
        check_citation(citation, sent)
    prompt = "\n".join(m["content"] for m in engine.requests[-1].messages)
    assert ("<search_result>\n<source>https://example.com/moon</source>\n<title>Moon</title>\n"
            "<search_result_content>\n[3] The Moon orbits the Earth.\n[4] It is far.\n</search_result_content>\n"
            "</search_result>") in prompt
    assert "<title>Off</title>\n<search_result_content>\nNot citable.\n</search_result_content>" in prompt


def test_citations_off_changes_nothing(client, engine):
    """No source with citations enabled: no numbering, no instructions, no citable passages (so no grammar)."""
    off = {key: value for key, value in GRASS.items() if key != "citations"}
    plain, _ = ask(client, engine, off)
    disabled, _ = ask(client, engine, {**off, "citations": {"enabled": False}})
    assert plain == disabled
    assert plain.citations == () and [m["role"] for m in plain.messages] == ["user"]
    assert plain.messages[0]["content"] == ("<document>\n<source>My Document</source>\n<document_content>\n"
                                            "The grass is green. The sky is blue.\n</document_content>\n"
                                            "</document>\n\nWhat colour is the grass?")


def test_count_tokens_and_render_see_the_numbered_prompt(client, engine):
    messages = [{"role": "user", "content": [GRASS, QUESTION]}]
    counted = client.post("/v1/messages/count_tokens", json=body(messages=messages, max_tokens=...)).get_json()
    usage = client.post("/v1/messages", json=body(messages=messages)).get_json()["usage"]
    assert counted["input_tokens"] == usage["input_tokens"]
    rendered = client.post("/v1/messages/render", json=body(messages=messages, max_tokens=...)).get_json()
    assert "[2] The sky is blue." in str(rendered)


# -- requests that are refused ---------------------------------------------------------------------------------

@pytest.mark.parametrize("block, message", [
    ({"type": "search_result", "title": "T", "content": [{"type": "text", "text": "x"}]},
     "messages.0.content.0.source: Field required"),
    ({"type": "search_result", "source": "s", "title": 3, "content": [{"type": "text", "text": "x"}]},
     "messages.0.content.0.title: Input should be a valid string"),
    ({"type": "search_result", "source": "s", "title": "T", "content": "just text"},
     "messages.0.content.0.content: Input should be a valid list"),
    ({"type": "search_result", "source": "s", "title": "T", "content": [{"type": "image", "source": {}}]},
     "messages.0.content.0.content.0.type: Input should be 'text'"),
    ({**search_result("T", "x"), "citations": {"enabled": "yes"}},
     "messages.0.content.0.citations.enabled: Input should be a valid boolean"),
    ({**GRASS, "citations": {"enabled": 1}}, "messages.0.content.0.citations.enabled: Input should be a valid boolean"),
])
def test_a_malformed_search_result_or_citations_field_is_a_400_naming_it(client, engine, block, message):
    response = client.post("/v1/messages", json=body(messages=[{"role": "user", "content": [block, QUESTION]}]))
    assert assert_error(response, 400, "invalid_request_error").startswith(message)
    assert engine.requests == []


def test_a_malformed_search_result_in_a_tool_result_is_named_too(client, engine):
    messages = [{"role": "user", "content": "Search."},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "s", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                    {"type": "search_result", "source": "s", "content": []}]}]}]
    response = client.post("/v1/messages", json=body(messages=messages, tools=[
        {"name": "s", "input_schema": {"type": "object"}}]))
    assert assert_error(response, 400, "invalid_request_error").startswith(
        "messages.2.content.0.content.0.title: Field required")


def test_citations_on_some_documents_only_is_a_400(client, engine):
    off = {**GRASS, "citations": {"enabled": False}}
    response = client.post("/v1/messages", json=body(messages=[{"role": "user", "content": [GRASS, off, QUESTION]}]))
    assert_error(response, 400, "invalid_request_error", "messages.0.content.1.citations: citations must be "
                                                         "enabled on all or none of the documents of a request")


def test_citations_with_an_output_format_is_a_400(client, engine):
    response = client.post("/v1/messages", json=body(
        messages=[{"role": "user", "content": [GRASS, QUESTION]}],
        output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}}))
    assert assert_error(response, 400, "invalid_request_error").startswith(
        "output_config.format: citations cannot be combined with an output format")


def test_an_earlier_cited_answer_sent_back_reads_as_one_text(client, engine):
    answer = [{"type": "text", "text": "The grass is green", "citations": [GRASS_CITATIONS[0]]},
              {"type": "text", "text": ". The sky is blue", "citations": [GRASS_CITATIONS[1]]},
              {"type": "text", "text": "."}]
    messages = [{"role": "user", "content": [GRASS, QUESTION]}, {"role": "assistant", "content": answer},
                {"role": "user", "content": "And the sea?"}]
    assert client.post("/v1/messages", json=body(messages=messages)).status_code == 200
    turns = engine.requests[-1].messages
    assert turns[2] == {"role": "assistant", "content": "The grass is green. The sky is blue."}
    # Text blocks of their own, without citations, are still separate paragraphs.
    plain = [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}]
    messages[1] = {"role": "assistant", "content": plain}
    assert client.post("/v1/messages", json=body(messages=messages)).status_code == 200
    assert engine.requests[-1].messages[2]["content"] == "One.\n\nTwo."
