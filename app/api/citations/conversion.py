"""A request whose documents or search results have citations enabled → the request the model reads, with every
citable source replaced by its numbered passages, the instructions on how to cite, and each passage's citation.

Anthropic counts `document_index` over all document blocks of the request and `search_result_index` over all
search_result blocks, each in the order they appear across messages and tool results, enabled or not; so do we.
As Anthropic requires, citations are enabled on all of the request's documents or on none (search results may
differ one from another). A request with none enabled is left exactly as it is: no numbering, no grammar.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import InvalidRequestError
from ..schema import TextBlock
from ..url_fetch import UrlFetcher
from .sources import Numbering, cited_document, cited_search_result

INSTRUCTIONS = (
    "The documents and search results in this conversation are split into numbered passages: each line starts "
    "with its number in square brackets, like [1]. When a sentence of your answer uses a passage, write the "
    "passage's number in square brackets right after the words it supports, for example: The sky is blue [2]. "
    "Write only numbers of passages you were given.")


@dataclass(frozen=True)
class CitedRequest:
    request: object                   # the validated request, each citable source now a text block of its passages
    citations: tuple[dict, ...]       # passage n's citation object is citations[n - 1]
    instructions: str = INSTRUCTIONS  # for the system prompt


def _enabled(block) -> bool:
    return block.citations is not None and block.citations.enabled


def _sources(request) -> Iterator[tuple[str, object, list, int]]:
    """(path, block, the list holding it, its index there) for every document and search result, in order."""
    for i, message in enumerate(request.messages):
        for j, block in enumerate(message.content):
            path = f"messages.{i}.content.{j}"
            if block.type in ("document", "search_result"):
                yield path, block, message.content, j
            elif block.type == "tool_result" and isinstance(block.content, list):
                for k, part in enumerate(block.content):
                    if part.type in ("document", "search_result"):
                        yield f"{path}.content.{k}", part, block.content, k


def cite_sources(request, fetcher: UrlFetcher | None) -> CitedRequest | None:
    """The request with its citable sources numbered, or None when no source has citations enabled. Raises
    InvalidRequestError (a document that cannot be read, citations on some documents only, or with an output
    format)."""
    sources = list(_sources(request))
    if not any(_enabled(block) for _, block, _, _ in sources):
        return None
    documents = [(path, block) for path, block, _, _ in sources if block.type == "document"]
    for path, block in documents:
        if _enabled(block) != _enabled(documents[0][1]):
            raise InvalidRequestError(f"{path}.citations: citations must be enabled on all or none of the "
                                      f"documents of a request")
    answer_format = request.answer_format()
    if answer_format is not None:
        raise InvalidRequestError(f"{answer_format[0].rsplit('.', 1)[0]}: citations cannot be combined with an "
                                  f"output format (a JSON answer has no text to cite in)")
    request = request.model_copy(deep=True)          # the client's request itself stays as it came
    numbering = Numbering()
    counts = {"document": 0, "search_result": 0}
    for path, block, holder, index in _sources(request):
        position = counts[block.type]
        counts[block.type] += 1
        if not _enabled(block):
            continue
        text = cited_document(block, path, fetcher, position, numbering) if block.type == "document" \
            else cited_search_result(block, position, numbering)
        cache_control = (block.model_extra or {}).get("cache_control")
        holder[index] = TextBlock(type="text", text=text, **({"cache_control": cache_control} if cache_control else {}))
    return CitedRequest(request, tuple(numbering.citations))
