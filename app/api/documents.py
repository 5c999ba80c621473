"""`document` content blocks → the text the model reads, on every model.

A document is rendered as Anthropic lays documents out in a prompt: wrapped in `<document>`, with its `title` as
`<source>` and its `context` (what the document is, for the model; never part of the document itself) before the
content. A PDF's text is extracted page by page with pypdf, each page in a `<page number="N">` element, so the
model (and a teacher looking at /v1/messages/render) can tell the pages apart. Citations are accepted and not
produced: the answer comes without them.

`url` and `file` sources are refused: fetching whatever URL a caller names would let any client make the server
reach hosts it can reach and they cannot (an SSRF hole), and there is no Files API here. Send the bytes instead.
"""
from __future__ import annotations

import base64
import binascii
import io

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from .errors import InvalidRequestError

TEXT_MEDIA_TYPE = "text/plain"
PDF_MEDIA_TYPE = "application/pdf"


def document_text(block, path: str) -> str:
    """The rendered document; `path` (e.g. "messages.0.content.1") names the block in every error."""
    body = _content(block.source if isinstance(block.source, dict) else {}, path)
    parts = ["<document>"]
    title, context = getattr(block, "title", None), getattr(block, "context", None)
    if title:
        parts.append(f"<source>{title}</source>")
    if context:
        parts.append(f"<context>{context}</context>")
    parts += ["<document_content>", body, "</document_content>", "</document>"]
    return "\n".join(parts)


def _content(source: dict, path: str) -> str:
    kind = source.get("type")
    if kind == "text":
        _media_type(source, path, TEXT_MEDIA_TYPE)
        return _string(source.get("data"), f"{path}.source.data")
    if kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            return content
        if not isinstance(content, list) or not all(isinstance(b, dict) and b.get("type") == "text"
                                                    and isinstance(b.get("text"), str) for b in content):
            raise InvalidRequestError(f"{path}.source.content: must be a string or a list of text blocks")
        return "\n\n".join(b["text"] for b in content)
    if kind == "base64":
        media_type = _media_type(source, path, None)
        data = _decoded(source.get("data"), f"{path}.source.data")
        if media_type == PDF_MEDIA_TYPE:
            return pdf_text(data, path)
        if media_type == TEXT_MEDIA_TYPE:
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequestError(f"{path}.source.data: text/plain data is not UTF-8") from None
        raise InvalidRequestError(f"{path}.source.media_type: must be {PDF_MEDIA_TYPE!r} or {TEXT_MEDIA_TYPE!r} "
                                  f"for a base64 document, not {media_type!r}")
    if kind == "url":
        raise InvalidRequestError(f"{path}.source: url sources are not fetched by this server (fetching any URL a "
                                  "client names is a server-side request forgery hole); send the document as "
                                  "base64 or text")
    if kind == "file":
        raise InvalidRequestError(f"{path}.source: file sources need the Files API, which this server does not "
                                  "have; send the document as base64 or text")
    raise InvalidRequestError(f"{path}.source.type: must be one of 'text', 'base64', 'content' or 'url', "
                              f"not {kind!r}")


def pdf_text(data: bytes, path: str) -> str:
    """The text of every page, each in its own `<page number="N">` element. A PDF that cannot be read is a 400."""
    if not data.lstrip()[:5] == b"%PDF-":
        raise InvalidRequestError(f"{path}: the document is not a PDF (its data does not start with %PDF-)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InvalidRequestError(f"{path}: the PDF is encrypted; send it without a password")
        pages = [page.extract_text() or "" for page in reader.pages]
    except InvalidRequestError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidRequestError(f"{path}: the PDF could not be read: {type(error).__name__}: {error}") from None
    return "\n".join(f'<page number="{number}">\n{text.strip()}\n</page>' for number, text in enumerate(pages, 1))


def _media_type(source: dict, path: str, expected: str | None) -> str:
    media_type = source.get("media_type", expected)
    if expected is not None and media_type != expected:
        raise InvalidRequestError(f"{path}.source.media_type: must be {expected!r}, not {media_type!r}")
    return media_type


def _string(value, path: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequestError(f"{path}: must be a string")
    return value


def _decoded(value, path: str) -> bytes:
    try:
        return base64.b64decode(_string(value, path), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError(f"{path}: not valid base64") from None
