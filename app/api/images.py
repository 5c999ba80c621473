"""`image` content blocks → decoded, checked images for a vision-language model, each standing in the message
text as a marker (`app.engine.prepared`) until the model's processor places it.

Anthropic's limits, with its wording where it has one: base64 jpeg, png, gif or webp; at most 5 MB of image data
and 8000 pixels on a side per image, and 100 images per request. The data must be the format its media_type says.
On a model that reads text only, an image is a 400 naming the model, never silently dropped. `url` sources are
refused unless the server runs with `--allow-url-fetch` (`url_fetch`); `file` sources are replaced by the base64
source their file stands for before conversion (`app.api.files.sources`).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import secrets
import warnings

from PIL import Image, UnidentifiedImageError

from ..engine.prepared import RequestImage, image_marker
from .errors import InvalidRequestError
from .url_fetch import UrlFetcher, fetch_or_refuse

MEDIA_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_SIDE = 8000
MAX_IMAGES = 100


class RequestImages:
    """The images of one request, in the order conversion meets them; `marker_for` adds one."""

    def __init__(self, model_id: str, accepts_images: bool, fetcher: UrlFetcher | None = None):
        self.model_id = model_id
        self.accepts_images = accepts_images
        self.fetcher = fetcher                     # url sources (of documents too); None: refused
        self.nonce = secrets.token_hex(8)
        self.images: list[RequestImage] = []

    def marker_for(self, block, path: str) -> str:
        if not self.accepts_images:
            raise InvalidRequestError(f"{path}: the served model {self.model_id} cannot see images: it reads text "
                                      "only. Send the image's content as text, or serve a vision-language model")
        if len(self.images) >= MAX_IMAGES:
            raise InvalidRequestError(f"{path}: too many images in this request: at most {MAX_IMAGES} are allowed")
        self.images.append(decode_image(block.source if isinstance(block.source, dict) else {}, path,
                                        self.fetcher))
        return image_marker(self.nonce, len(self.images) - 1)


def decode_image(source: dict, path: str, fetcher: UrlFetcher | None = None) -> RequestImage:
    kind = source.get("type")
    if kind == "url":
        fetched = fetch_or_refuse(fetcher, source, path, MAX_IMAGE_BYTES)
        if fetched.media_type not in MEDIA_TYPES:
            raise InvalidRequestError(f"{path}.source.url: the fetched content is {fetched.media_type or 'untyped'}"
                                      f", not one of {', '.join(MEDIA_TYPES)}")
        return _checked_image(fetched.data, fetched.media_type, path)
    if kind == "file":
        # Reached only by a caller that skipped app.api.files.sources.resolve_file_sources.
        raise InvalidRequestError(f"{path}.source: file sources are not accepted here")
    if kind != "base64":
        raise InvalidRequestError(f"{path}.source.type: must be 'base64', 'url' or 'file', not {kind!r}")
    media_type = source.get("media_type")
    if media_type not in MEDIA_TYPES:
        raise InvalidRequestError(f"{path}.source.media_type: must be one of {', '.join(MEDIA_TYPES)}, "
                                  f"not {media_type!r}")
    data = source.get("data")
    if not isinstance(data, str):
        raise InvalidRequestError(f"{path}.source.data: must be a string")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError(f"{path}.source.data: not valid base64") from None
    return _checked_image(raw, media_type, path)


def _checked_image(raw: bytes, media_type: str, path: str) -> RequestImage:
    if len(raw) > MAX_IMAGE_BYTES:
        raise InvalidRequestError(f"{path}.source.base64: image exceeds 5 MB maximum: {len(raw)} bytes > "
                                  f"{MAX_IMAGE_BYTES} bytes")
    return RequestImage(image=_decoded_rgb(raw, media_type, path), digest=hashlib.sha256(raw).hexdigest(),
                        media_type=media_type)


def _decoded_rgb(raw: bytes, media_type: str, path: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))      # reads the header only: the size is known before decoding
            if max(image.size) > MAX_IMAGE_SIDE:
                raise InvalidRequestError(f"{path}.source.base64.data: image dimensions exceed max allowed size: "
                                          f"{MAX_IMAGE_SIDE} pixels")
            if image.format != MEDIA_TYPES[media_type]:
                raise InvalidRequestError(f"{path}.source: image does not match the provided media type "
                                          f"{media_type} (the data is {image.format or 'not an image'})")
            image.load()
            return image.convert("RGB")          # a GIF's first frame; alpha and palettes flattened
    except InvalidRequestError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as error:
        raise InvalidRequestError(f"{path}.source.data: the image could not be decoded as {media_type}: "
                                  f"{type(error).__name__}") from None
