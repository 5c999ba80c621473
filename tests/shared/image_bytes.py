"""Small real images, encoded as a client would send them (Pillow only: the API tests run without torch)."""
from __future__ import annotations

import base64
import io

from PIL import Image


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (48, 40), image_format: str = "PNG") -> bytes:
    """A solid-colour image with a stripe, so its pixels are not all one value."""
    image = Image.new("RGB", size, color)
    for x in range(size[0]):
        image.putpixel((x, size[1] // 2), (255 - color[0], 255 - color[1], 255 - color[2]))
    out = io.BytesIO()
    image.save(out, format=image_format)
    return out.getvalue()


def image_block(raw: bytes, media_type: str = "image/png") -> dict:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type,
                                        "data": base64.b64encode(raw).decode()}}
