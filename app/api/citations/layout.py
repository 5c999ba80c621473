"""How citable text is laid out for the model: a passage per line after its mark, and the search result block.

A search result is laid out the way documents are (`documents.wrapped_document`): a titled, sourced element the
model can tell apart from the conversation around it. Without citations its blocks are plain text in it.
"""
from __future__ import annotations


def numbered_lines(lines: list[tuple[str, str]]) -> str:
    """(mark, passage text) pairs, one passage per line: `[3] The sky is blue.`"""
    return "\n".join(f"{mark} {text}" for mark, text in lines)


def search_result_layout(block, content: str) -> str:
    return "\n".join(["<search_result>", f"<source>{block.source}</source>", f"<title>{block.title}</title>",
                      "<search_result_content>", content, "</search_result_content>", "</search_result>"])


def search_result_text(block) -> str:
    """A search result whose citations are off: its text blocks, unnumbered, in the same layout."""
    return search_result_layout(block, "\n\n".join(part.text for part in block.content))
