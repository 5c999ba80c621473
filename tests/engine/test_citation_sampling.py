"""Citations from the real default model (SmolLM2-135M), sampled: a small model may cite badly, never invalidly.

Requests go through the whole path a Messages request takes (validation, conversion with numbered passages, the
engine with its citing grammar, the api's assembly into cited text blocks), and every citation of every sample is
checked against the request as sent (`citation_checks`). The text document carries Wikipedia-style footnotes
("[15]"), which the question names and the model likes to copy: without the grammar, 3 of these 16 answers show
marks of passages that do not exist ("[13]", "[15][23]", "[01]"); with it, a `[` followed by a digit can only become
a mark of a real passage.
"""
from __future__ import annotations

import base64
import dataclasses

import pytest
from citation_checks import check_message
from pdf_bytes import pdf_bytes

from app.api.citations.assembly import block_assembler
from app.api.convert import Conversion, to_generation_request
from app.api.schema import parse_messages_request
from app.api.signatures import ThinkingSigner
from app.api.stream import collect_message, message_skeleton
from app.engine.request import Sampling

SEEDS = range(16)                         # per request shape: 32 sampled answers in all
ARTICLE = ("The Eiffel Tower is in Paris.[7] It was finished in 1889.[15][23] It is 330 metres tall.[31]\n"
           "Millions of people visit it every year.[44]")
PDF = {"type": "base64", "media_type": "application/pdf",
       "data": base64.b64encode(pdf_bytes("The tower has 1665 steps. Lifts go to the top.",
                                          "It weighs about 10100 tonnes.")).decode()}
MOON = {"type": "search_result", "source": "https://example.com/moon", "title": "The Moon",
        "content": [{"type": "text", "text": "The Moon orbits the Earth."},
                    {"type": "text", "text": "It is about 384400 km away."}], "citations": {"enabled": True}}
ON = {"enabled": True}

DOCUMENTS = {"model": "m", "max_tokens": 48, "messages": [{"role": "user", "content": [
    {"type": "document", "title": "Eiffel Tower", "source": {"type": "text", "media_type": "text/plain",
                                                              "data": ARTICLE}, "citations": ON},
    {"type": "document", "title": "Facts", "source": PDF, "citations": ON},
    {"type": "document", "source": {"type": "content", "content": [
        {"type": "text", "text": "Gustave Eiffel's company built it."}, {"type": "text", "text": "It is iron."}]},
     "citations": ON},
    MOON,
    # A question that names a footnote, as a reader would: the model copies such numbers all the more.
    {"type": "text", "text": "Which footnotes, like [15], back each fact? When was the Eiffel Tower finished?"}]}]}

SEARCH_TOOL = {"name": "search", "description": "Search the web.",
               "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}
TOOL_LOOP = {"model": "m", "max_tokens": 48, "tools": [SEARCH_TOOL], "messages": [
    {"role": "user", "content": "How far away is the Moon, and what does it orbit?"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "search",
                                       "input": {"q": "moon distance"}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
        MOON, {**MOON, "source": "https://example.com/orbit", "title": "Orbits [2024]", "content": [
            {"type": "text", "text": "An orbit is a curved path [1] around a star or planet."}]}]}]}]}


@pytest.fixture(scope="module")
def engine(default_model):
    from app.config import Config
    from app.engine.runtime import LocalEngine
    engine = LocalEngine(Config(device="cpu"), loader=lambda config: default_model)
    engine.load()
    yield engine
    engine.close()


def sampled_messages(engine, body: dict) -> list[dict]:
    """One sampled answer per seed, the generations submitted together so the step loop batches them."""
    generation = to_generation_request(parse_messages_request(body, min_thinking_budget=1),
                                       Conversion(signer=ThinkingSigner(b"key", "m")))
    assert generation.citations
    handles = [engine.submit(dataclasses.replace(generation, sampling=Sampling(temperature=1.0, seed=seed)))
               for seed in SEEDS]
    return [collect_message(handle, message_skeleton("msg_test", "m", 0),
                            block_assembler(0, citations=generation.citations, sign_thinking=lambda text: ""),
                            lambda: False) for handle in handles]


@pytest.mark.parametrize("body", [DOCUMENTS, TOOL_LOOP], ids=["documents", "tool-results"])
def test_every_sampled_citation_is_exact(engine, body):
    messages = sampled_messages(engine, body)
    citations = sum(check_message(message, body) for message in messages)
    marks = sum(message["thinkserve"]["citations"]["marks"] for message in messages)
    assert citations == marks
    # The footnotes and "[1]" in the sources make the model reach for brackets: the grammar was at work.
    assert sum(message["thinkserve"]["citations"].get("tokens_constrained", 0) for message in messages) \
        + sum(message["thinkserve"].get("tool_grammar", {}).get("tokens_constrained", 0) for message in messages) > 0
    print(f"\n{len(messages)} samples, {citations} citations, every one exact")
    assert citations > 0
