"""`url` sources of images and documents, fetched only on a server started with `--allow-url-fetch`.

Off by default: a server that fetches whatever URL a caller names lets every caller reach what the server can reach
(cloud metadata endpoints, services on localhost, the private network): a server-side request forgery hole. An
operator who turns it on for a trusted, single-user setup gets plain http(s) GETs with a timeout and a size cap,
and every failure is a 400 naming the block.
"""
from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import InvalidRequestError

REFUSED = ("url sources are not fetched by this server (fetching any URL a client names is a server-side request "
           "forgery hole; the operator can allow it with --allow-url-fetch)")


@dataclass(frozen=True)
class Fetched:
    data: bytes
    media_type: str          # the response's Content-Type, without parameters ("" when it sent none)


@dataclass(frozen=True)
class UrlFetcher:
    timeout_s: float = 10.0

    def fetch(self, source: dict, path: str, max_bytes: int) -> Fetched:
        """GET source["url"]; at most max_bytes of body. Raises InvalidRequestError naming `path`."""
        url = source.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise InvalidRequestError(f"{path}.source.url: must be an http or https URL")
        request = urllib.request.Request(url, headers={"User-Agent": "thinkserve"})
        try:
            # urllib follows redirects to http, https and ftp only, never to file: URLs.
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                data = response.read(max_bytes + 1)
                media_type = response.headers.get_content_type() if response.headers.get("Content-Type") else ""
        except urllib.error.HTTPError as error:
            raise InvalidRequestError(f"{path}.source.url: fetching it failed: HTTP {error.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", None) or error
            raise InvalidRequestError(f"{path}.source.url: it could not be fetched: {reason}") from None
        if len(data) > max_bytes:
            raise InvalidRequestError(f"{path}.source.url: the fetched content exceeds {max_bytes} bytes")
        return Fetched(data=data, media_type=media_type)


def fetch_or_refuse(fetcher: UrlFetcher | None, source: dict, path: str, max_bytes: int) -> Fetched:
    if fetcher is None:
        raise InvalidRequestError(f"{path}.source: {REFUSED}; send the content as base64")
    return fetcher.fetch(source, path, max_bytes)
