"""Anthropic's citations, served on any model: the prompt side (`conversion`, `sources`, `passages`, `layout`) and
the answer side (`assembly`). The engine's half, the grammar that lets the model write only marks of passages that
exist and the parser that takes them out of the text, is `app.engine.citations`.

    documents / search results ──► numbered passages in the prompt, a citation object per passage
    the answer "The sky is blue [2]." ──► grammar: only [1]..[N] ──► CitationMark(2) after "The sky is blue"
                                      ──► a text block "The sky is blue" with citations [passage 2's object]
"""
from .conversion import CitedRequest, cite_sources

__all__ = ["CitedRequest", "cite_sources"]
