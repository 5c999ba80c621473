"""What a request becomes before it is queued: the prompt prepared once, as the model will read it.

The api layer asks the engine to `prepare` a request, counts and checks its ids, and submits the same prepared
prompt: one rendering and one tokenization per request, so count_tokens, usage and the context check always agree.

Images travel inside the message texts as markers (`image_marker`), so every step that shapes messages (tool turns,
merged turns, the system prompt) keeps them where the client put them; only the vision model's preparation turns
each marker into the image parts its chat template and processor expect. Nothing here imports torch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RequestImage:
    """One image of a request, decoded and checked by the api layer."""
    image: object                 # a PIL.Image in RGB
    digest: str                   # sha256 of the image's bytes, hex: what the prefix cache keys on
    media_type: str


@dataclass(frozen=True)
class PreparedPrompt:
    text: str                     # the rendered prompt, each image as its template's placeholder
    ids: list[int]                # the token ids the model reads, each image expanded to its placeholder tokens
    # The ids with every placeholder token of an image replaced by a number derived from that image's content, so
    # two prompts share cached KV only where their images are the same too. Equal to `ids` without images.
    cache_key: list[int]
    # The processor's other outputs (pixel_values and what goes with them), for the vision tower; {} without images.
    image_inputs: dict = field(default_factory=dict)
    image_token_id: int | None = None     # the placeholder token the image features replace

    @property
    def has_images(self) -> bool:
        return bool(self.image_inputs)


# Private-use delimiters and a per-request nonce: text a client writes can never be taken for an image.
_MARKER = "\ue000thinkserve-image-{nonce}-{index}\ue001"


def image_marker(nonce: str, index: int) -> str:
    return _MARKER.format(nonce=nonce, index=index)


def split_at_image_markers(text: str, nonce: str) -> list[str | int]:
    """`text` as pieces in order: strings, and the index of each image whose marker stood there."""
    if not nonce:
        return [text] if text else []
    pattern = re.compile(re.escape(_MARKER.format(nonce=nonce, index="@")).replace("@", r"(\d+)"))
    pieces: list[str | int] = []
    position = 0
    for match in pattern.finditer(text):
        if match.start() > position:
            pieces.append(text[position:match.start()])
        pieces.append(int(match.group(1)))
        position = match.end()
    if position < len(text):
        pieces.append(text[position:])
    return pieces


def image_cache_id(digest: str) -> int:
    """A negative number from an image's digest: never a real token id, and equal only for equal images."""
    return -1 - int(digest[:15], 16)
