"""Images on a vision-language model: a tiny random Llava (a real architecture, with a real LlavaProcessor around
the default tokenizer). The image reaches the model through the step loop's chunked prefill exactly as the model's
own forward would merge it, the placeholders are the processor's expansion, and the prefix cache keys on the image
content: the same placeholder tokens with a different image never share KV."""
from __future__ import annotations

import hashlib
import io

import pytest
import torch
from engine_helpers import final, text_of
from image_bytes import png_bytes
from PIL import Image
from tiny_vlm import IMAGE_TOKENS, build_tiny_llava, save_tiny_llava

from app.config import Config
from app.engine.errors import PromptError
from app.engine.events import Finished
from app.engine.model.loader import load_model, wrap_loaded_model
from app.engine.model.vision import is_vision_checkpoint
from app.engine.prepared import RequestImage, image_marker
from app.engine.request import GenerationRequest, Sampling
from app.engine.scheduler.forward import ChunkImages, PoolRunner

NONCE = "0123456789abcdef"
RED, BLUE = png_bytes((200, 30, 30)), png_bytes((20, 40, 220))


def request_image(raw: bytes) -> RequestImage:
    return RequestImage(image=Image.open(io.BytesIO(raw)).convert("RGB"), digest=hashlib.sha256(raw).hexdigest(),
                        media_type="image/png")


def ask_about(*images: bytes, question: str = "What is in this picture?", max_new_tokens: int = 8):
    markers = "".join(image_marker(NONCE, index) + "\n" for index in range(len(images)))
    return GenerationRequest(messages=({"role": "user", "content": markers + question},),
                             images=tuple(request_image(raw) for raw in images), image_nonce=NONCE,
                             sampling=Sampling(temperature=0), max_new_tokens=max_new_tokens)


@pytest.fixture(scope="module")
def tiny_vlm():
    return build_tiny_llava()


@pytest.fixture
def vision_engine(make_engine, tiny_vlm):
    model, processor = tiny_vlm

    def make(**config):
        loaded = wrap_loaded_model(model, processor.tokenizer, "tiny-llava", processor=processor)
        return make_engine(loaded=loaded, **config)
    return make


def test_the_placeholders_are_the_processors_expansion(vision_engine, tiny_vlm):
    model, processor = tiny_vlm
    engine = vision_engine()
    assert engine.accepts_images
    prepared = engine.prepare(ask_about(RED, BLUE))
    assert prepared.text.count("<image>") == 2
    assert prepared.ids.count(model.config.image_token_id) == 2 * IMAGE_TOKENS
    expanded = processor(text=[prepared.text], images=[request_image(RED).image, request_image(BLUE).image],
                         add_special_tokens=False)["input_ids"][0]
    assert prepared.ids == list(expanded)
    # The cache key differs from the ids exactly at the placeholders, one value per image.
    differing = [(i, key) for i, (key, token) in enumerate(zip(prepared.cache_key, prepared.ids)) if key != token]
    assert len(differing) == 2 * IMAGE_TOKENS and len({key for _, key in differing}) == 2
    assert engine.count_prompt_tokens(ask_about(RED, BLUE)) == len(prepared.ids)


def last_logits_in_chunks(model, prepared, chunk: int) -> torch.Tensor:
    """The step loop's way: the vision tower once, then the prompt in chunks, placeholders read as features."""
    runner = PoolRunner(model, torch.device("cpu"), slot_tokens=len(prepared.ids), budget_bytes=1 << 30, max_slots=1)
    features = runner.image_features(prepared.image_inputs)
    seen = 0
    for start in range(0, len(prepared.ids), chunk):
        ids = prepared.ids[start:start + chunk]
        logits = runner.prefill(0, ids, start, ChunkImages(prepared.image_token_id, features, seen))
        seen += ids.count(prepared.image_token_id)
    return logits


def test_the_image_reaches_the_model_as_its_own_forward_reads_it(vision_engine, tiny_vlm):
    model, _ = tiny_vlm
    engine = vision_engine()
    red, blue = engine.prepare(ask_about(RED)), engine.prepare(ask_about(BLUE))
    with torch.inference_mode():
        red_logits = last_logits_in_chunks(model, red, chunk=7)       # chunks that cut the placeholder run
        reference = model(input_ids=torch.tensor([red.ids]), **red.image_inputs).logits[:, -1, :].float()
        assert torch.allclose(red_logits, reference, atol=1e-4)
        assert torch.equal(last_logits_in_chunks(model, red, chunk=7), red_logits)      # same image, same logits
        blue_logits = last_logits_in_chunks(model, blue, chunk=7)
    assert red.ids == blue.ids                       # the same tokens: only the pixels differ
    assert (red_logits - blue_logits).abs().max() > 1e-3


def test_greedy_output_equals_generate_on_the_processors_inputs(vision_engine, tiny_vlm):
    model, processor = tiny_vlm
    engine = vision_engine(prefill_chunk=8)
    for raw in (RED, BLUE):
        request = ask_about(raw, max_new_tokens=10)
        prepared = engine.prepare(request)
        events = list(engine.submit(request).events(timeout=120))
        assert isinstance(final(events), Finished)
        inputs = processor(text=[prepared.text], images=[request.images[0].image], return_tensors="pt",
                           add_special_tokens=False)
        with torch.inference_mode():
            generated = model.generate(**inputs, max_new_tokens=10, do_sample=False)
        new_tokens = generated[0, inputs["input_ids"].shape[1]:]
        assert text_of(events) == processor.tokenizer.decode(new_tokens, skip_special_tokens=True)


def test_the_prefix_cache_never_shares_kv_between_different_images(vision_engine):
    engine = vision_engine()
    fresh = vision_engine(no_prefix_cache=True)

    def run(on, raw) -> tuple[str, Finished]:
        events = list(on.submit(ask_about(raw)).events(timeout=120))
        assert isinstance(final(events), Finished)
        return text_of(events), final(events)

    prepared = engine.prepare(ask_about(RED))
    text_before_image = prepared.ids.index(prepared.image_token_id)
    run(engine, RED)
    blue_text, blue = run(engine, BLUE)           # the same placeholder tokens, another image
    assert blue.usage.cached_prompt_tokens <= text_before_image
    assert blue_text == run(fresh, BLUE)[0]
    red_text, red_again = run(engine, RED)
    assert red_again.usage.cached_prompt_tokens >= text_before_image + IMAGE_TOKENS
    assert red_text == run(fresh, RED)[0]


def test_a_text_only_model_refuses_images_naming_itself(make_engine):
    engine = make_engine()
    assert not engine.accepts_images
    with pytest.raises(PromptError, match="tiny-llama reads text only: it cannot see images"):
        engine.prepare(ask_about(RED))


def test_the_loader_detects_and_loads_a_vision_checkpoint(tmp_path):
    directory = save_tiny_llava(tmp_path / "tiny-llava")
    assert is_vision_checkpoint(str(directory))
    loaded = load_model(Config(model=str(directory), device="cpu", data_dir=str(tmp_path)))
    assert loaded.processor is not None and loaded.image_token_id == loaded.model.config.image_token_id
    assert "image" in loaded.tokenizer.chat_template
    text_only = tmp_path / "text-only"
    loaded.model.config.text_config.save_pretrained(text_only)
    assert not is_vision_checkpoint(str(text_only))
