"""`document` content blocks → the text the model reads, on every model.

A document is rendered as Anthropic lays documents out in a prompt: wrapped in `<document>`, with its `title` as
`<source>` and its `context` (what the document is, for the model; never part of the document itself) before the
content. A PDF's text is extracted page by page with pypdf, each page in a `<page number="N">` element, so the
model (and a teacher looking at /v1/messages/render) can tell the pages apart. With citations enabled the document
is rendered as numbered passages instead (`app.api.citations`), from the same content (`document_body`).

`url` sources are refused unless the operator started the server with `--allow-url-fetch` (`url_fetch`: fetching
whatever URL a caller names is an SSRF hole); `file` sources are replaced by the inline source their file stands
for before conversion (`app.api.files.sources`).
"""
from __future__ import annotations

import base64
import binascii
import io

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from .errors import InvalidRequestError
from .url_fetch import UrlFetcher, fetch_or_refuse

TEXT_MEDIA_TYPE = "text/plain"
PDF_MEDIA_TYPE = "application/pdf"
MAX_FETCHED_BYTES = 32 * 1024 * 1024         # Anthropic's request limit: a fetched document may be no larger


class PdfText(str):
    """A PDF's rendered text (`pdf_text`) that keeps each page's extracted text too, for page-numbered citations."""
    pages: tuple[str, ...] = ()


def document_body(block, path: str, fetcher: UrlFetcher | None = None) -> str:
    """The document's content as text, checked: a text document's as given, a PDF's as a `PdfText`, a content
    document's text blocks joined. `path` (e.g. "messages.0.content.1") names the block in every error. `fetcher`:
    how url sources are fetched, None where they are refused."""
    return _content(block.source if isinstance(block.source, dict) else {}, path, fetcher)


def document_text(block, path: str, fetcher: UrlFetcher | None = None) -> str:
    """The rendered document, as the model reads it."""
    return wrapped_document(block, document_body(block, path, fetcher))


def wrapped_document(block, body: str) -> str:
    """`body` in the document's wrapping: its title as `<source>`, its context, then the content."""
    parts = ["<document>"]
    title, context = getattr(block, "title", None), getattr(block, "context", None)
    if title:
        parts.append(f"<source>{title}</source>")
    if context:
        parts.append(f"<context>{context}</context>")
    parts += ["<document_content>", body, "</document_content>", "</document>"]
    return "\n".join(parts)


def _content(source: dict, path: str, fetcher: UrlFetcher | None) -> str:
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
        if media_type not in (PDF_MEDIA_TYPE, TEXT_MEDIA_TYPE):
            raise InvalidRequestError(f"{path}.source.media_type: must be {PDF_MEDIA_TYPE!r} or "
                                      f"{TEXT_MEDIA_TYPE!r} for a base64 document, not {media_type!r}")
        return _bytes_text(data, media_type, f"{path}.source.data", path)
    if kind == "url":
        fetched = fetch_or_refuse(fetcher, source, path, MAX_FETCHED_BYTES)
        # Anthropic's url documents are PDFs; a server that says text/plain gets its text read as such.
        media_type = TEXT_MEDIA_TYPE if fetched.media_type == TEXT_MEDIA_TYPE else PDF_MEDIA_TYPE
        return _bytes_text(fetched.data, media_type, f"{path}.source.url", path)
    if kind == "file":
        # Reached only by a caller that skipped app.api.files.sources.resolve_file_sources.
        raise InvalidRequestError(f"{path}.source: file sources are not accepted here")
    raise InvalidRequestError(f"{path}.source.type: must be one of 'text', 'base64', 'content', 'url' or 'file', "
                              f"not {kind!r}")


def _bytes_text(data: bytes, media_type: str, where: str, path: str) -> str:
    if media_type == PDF_MEDIA_TYPE:
        return pdf_text(data, path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError(f"{where}: text/plain data is not UTF-8") from None


def pdf_text(data: bytes, path: str) -> PdfText:
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
    text = PdfText("\n".join(f'<page number="{number}">\n{page.strip()}\n</page>'
                              for number, page in enumerate(pages, 1)))
    text.pages = tuple(pages)
    return text


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
