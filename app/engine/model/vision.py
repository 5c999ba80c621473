"""Vision-language models: telling one from its config, preparing a prompt with images through its own processor,
and turning pixel values into the embeddings its placeholder tokens stand for.

The step loop prefills in chunks and reuses cached prefixes, so it cannot hand the model `pixel_values` with
`input_ids` the way `generate()` does (a chunk may hold part of an image's placeholders, or none). Instead the
vision tower runs once per request (`image_features`), and each chunk's embeddings get the features of the
placeholders it holds (`embed_with_images`): the same numbers the model's own forward would have merged in.
"""
from __future__ import annotations

import hashlib

import torch
from transformers import AutoConfig
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

from ..errors import ModelLoadError, PromptError
from ..prepared import RequestImage, image_cache_id

# The processor returns these for the text; everything else it returns goes to the vision tower.
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def is_vision_checkpoint(location: str) -> bool:
    """Whether the checkpoint at `location` (a directory or hub id) is an image-text-to-text model."""
    try:
        config = AutoConfig.from_pretrained(location)
    except (OSError, ValueError):
        return False             # the model load that follows says what is wrong
    return config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES and hasattr(config, "vision_config")


def check_vision_model(model) -> None:
    """Refuse the vision models whose positions the step loop would get wrong: Qwen2-VL's family places image
    tokens with 3-D rotary positions computed from the image grid (M-RoPE); the loop counts 1-D positions."""
    text = model.config.get_text_config()
    rope = {**(getattr(text, "rope_scaling", None) or {}), **(getattr(text, "rope_parameters", None) or {})}
    if "mrope_section" in rope:
        raise ModelLoadError(f"{model.config.model_type} places image tokens with multimodal rotary positions "
                             "(M-RoPE), which thinkserve's step loop does not compute yet; serve a Llava-, "
                             "Idefics3/SmolVLM-, Gemma 3- or Mistral 3-style model instead")
    if image_token_id_of(model) is None:
        raise ModelLoadError(f"{model.config.model_type}: the config names no image token (image_token_id)")


def image_token_id_of(model) -> int | None:
    config = model.config
    for name in ("image_token_id", "image_token_index"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


def process_images(processor, text: str, images: list[RequestImage]) -> tuple[list[int], dict]:
    """The processor's own expansion of the rendered prompt: (ids, the vision tower's inputs)."""
    try:
        # No special tokens: the template wrote the ones the model expects (as `prompt.prompt_ids` says).
        processed = processor(text=[text], images=[image.image for image in images], return_tensors="pt",
                              add_special_tokens=False)
    except (ValueError, TypeError, OSError) as error:
        raise PromptError(f"the model's processor could not prepare these images: {error}") from error
    ids = processed["input_ids"][0].tolist()
    return ids, {name: value for name, value in processed.items() if name not in TEXT_INPUTS}


def image_cache_key(ids: list[int], image_token_id: int, images: list[RequestImage]) -> list[int]:
    """The ids with each image's placeholder tokens replaced by a number derived from that image's content.

    Where each image's placeholders form one run (Llava, Gemma 3), run i is image i. Where a processor splits an
    image into several runs (Idefics3's tiles), every placeholder gets the digest of all the request's images
    together: correct (shared only with the very same images), if less reusable across turns that add images."""
    runs = []
    for position, token in enumerate(ids):
        if token == image_token_id:
            if runs and runs[-1][1] == position:
                runs[-1][1] = position + 1
            else:
                runs.append([position, position + 1])
    if len(runs) == len(images):
        keys = [image_cache_id(image.digest) for image in images]
    else:
        combined = hashlib.sha256("".join(image.digest for image in images).encode()).hexdigest()
        keys = [image_cache_id(combined)] * len(runs)
    key = list(ids)
    for (start, end), value in zip(runs, keys):
        key[start:end] = [value] * (end - start)
    return key


def image_features(model, image_inputs: dict, device: torch.device) -> torch.Tensor:
    """The vision tower and projector on a request's images: [placeholder tokens, hidden], in prompt order."""
    inputs = {name: value.to(device) if isinstance(value, torch.Tensor) else value
              for name, value in image_inputs.items()}
    if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
        inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    output = model.get_image_features(**inputs, return_dict=True)
    features = getattr(output, "pooler_output", output)
    if isinstance(features, (list, tuple)):
        features = torch.cat([f.reshape(-1, f.shape[-1]) for f in features])
    return features.reshape(-1, features.shape[-1])


def embed_with_images(model, input_ids: torch.Tensor, image_token_id: int, features: torch.Tensor,
                      offset: int) -> torch.Tensor:
    """input_ids: [1, n]. Their embeddings [1, n, hidden], each placeholder's replaced by the image features from
    `offset` on (offset: the placeholders before this chunk)."""
    embeds = model.get_input_embeddings()(input_ids)
    mask = input_ids == image_token_id
    count = int(mask.sum())
    if count:
        embeds = embeds.clone()
        embeds[mask] = features[offset:offset + count].to(embeds.dtype)
    return embeds
