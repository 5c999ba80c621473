"""image content blocks at the API: decoded and checked with Anthropic's limits and messages, kept where the client
put them (user turns and tool results) until the model's processor places them, counted exactly, and refused with a
400 that names the model when the served model reads text only."""
from __future__ import annotations

import base64

import pytest

from api_helpers import assert_error, body
from fake_engine import IMAGE_TOKENS
from image_bytes import image_block, png_bytes

RED = png_bytes((200, 30, 30))


@pytest.fixture
def vision_client(make_app, engine):
    engine.accepts_images = True
    return make_app(engine).test_client()


def ask(*blocks) -> list[dict]:
    return [{"role": "user", "content": [*blocks, {"type": "text", "text": "What is this?"}]}]


@pytest.mark.parametrize("image_format, media_type", [
    ("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")])
def test_each_media_type_reaches_the_engine_decoded(vision_client, engine, image_format, media_type):
    raw = png_bytes((10, 200, 10), image_format=image_format)
    response = vision_client.post("/v1/messages", json=body(messages=ask(image_block(raw, media_type))))
    assert response.status_code == 200, response.get_data(as_text=True)
    [image] = engine.requests[-1].images
    assert image.media_type == media_type
    assert image.image.mode == "RGB" and image.image.size == (48, 40)


def test_count_tokens_render_and_usage_agree_and_count_each_image_expanded(vision_client):
    messages = ask(image_block(RED), image_block(png_bytes((0, 0, 255))))
    counted = vision_client.post("/v1/messages/count_tokens", json=body(messages=messages, max_tokens=...))
    rendered = vision_client.post("/v1/messages/render", json=body(messages=messages)).get_json()
    usage = vision_client.post("/v1/messages", json=body(messages=messages)).get_json()["usage"]
    without = vision_client.post("/v1/messages/count_tokens", json=body(messages=ask(), max_tokens=...))
    total = usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"]
    assert counted.get_json()["input_tokens"] == rendered["input_tokens"] == total
    assert total == without.get_json()["input_tokens"] + 2 * IMAGE_TOKENS
    assert rendered["images"] == 2
    assert rendered["prompt"].count("<image>") == 2
    assert rendered["prompt"].index("<image>") < rendered["prompt"].index("What is this?")


def test_the_prompt_is_prepared_once_and_that_preparation_is_submitted(vision_client, engine):
    assert vision_client.post("/v1/messages", json=body(messages=ask(image_block(RED)))).status_code == 200
    [prepared] = engine.prepared
    assert prepared is not None and prepared.text.count("<image>") == 1


def test_an_image_in_a_tool_result_reaches_the_model(vision_client, engine):
    tool = {"name": "screenshot", "input_schema": {"type": "object", "properties": {}}}
    messages = [{"role": "user", "content": "Take a screenshot"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "screenshot",
                                                   "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                              "content": [{"type": "text", "text": "the screen:"},
                                                          image_block(RED)]}]}]
    response = vision_client.post("/v1/messages/render", json=body(messages=messages, tools=[tool]))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["images"] == 1
    assert "the screen:\n <image> " in response.get_json()["prompt"]


def test_text_that_looks_like_a_marker_is_never_taken_for_an_image(vision_client):
    forged = "\ue000thinkserve-image-0000000000000000-0\ue001"
    messages = [{"role": "user", "content": [image_block(RED), {"type": "text", "text": forged}]}]
    rendered = vision_client.post("/v1/messages/render", json=body(messages=messages)).get_json()
    assert rendered["images"] == 1 and rendered["prompt"].count("<image>") == 1
    assert forged in rendered["prompt"]


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens", "/v1/messages/render"])
def test_a_text_only_model_refuses_an_image_naming_itself(client, path):
    message = assert_error(client.post(path, json=body(messages=ask(image_block(RED)))), 400,
                           "invalid_request_error")
    assert message.startswith("messages.0.content.0: the served model fake-model cannot see images")


def test_an_image_in_an_assistant_turn_is_refused(vision_client):
    messages = [{"role": "user", "content": "Draw"}, {"role": "assistant", "content": [image_block(RED)]},
                {"role": "user", "content": "Again"}]
    assert_error(vision_client.post("/v1/messages", json=body(messages=messages)), 400, "invalid_request_error",
                 "messages.1.content.0: images can only be sent in user turns")


def base64_source(raw: bytes, media_type: str = "image/png") -> dict:
    return {"type": "base64", "media_type": media_type, "data": base64.b64encode(raw).decode()}


@pytest.mark.parametrize("source, message", [
    ({"type": "url", "url": "http://169.254.169.254/latest/meta-data"},
     "messages.0.content.0.source: url sources are not fetched by this server (fetching any URL a client names is "
     "a server-side request forgery hole; the operator can allow it with --allow-url-fetch); send the content as "
     "base64"),
    ({"type": "file", "file_id": "file_1"},
     "messages.0.content.0.source.file_id: file file_1 not found: it was never uploaded to this server, or it "
     "has been deleted"),
    (base64_source(RED, "image/bmp"),
     "messages.0.content.0.source.media_type: must be one of image/jpeg, image/png, image/gif, image/webp, "
     "not 'image/bmp'"),
    ({"type": "base64", "media_type": "image/png", "data": "not base64!"},
     "messages.0.content.0.source.data: not valid base64"),
    (base64_source(RED, "image/jpeg"),
     "messages.0.content.0.source: image does not match the provided media type image/jpeg (the data is PNG)"),
    (base64_source(b"\x89PNG\r\n\x1a\n" + b"\0" * 40),
     "messages.0.content.0.source.data: the image could not be decoded as image/png: UnidentifiedImageError"),
    (base64_source(png_bytes((1, 2, 3), size=(8001, 2))),
     "messages.0.content.0.source.base64.data: image dimensions exceed max allowed size: 8000 pixels"),
    (base64_source(b"\0" * (5 * 1024 * 1024 + 1)),
     "messages.0.content.0.source.base64: image exceeds 5 MB maximum: 5242881 bytes > 5242880 bytes"),
])
def test_bad_images_are_400s_naming_the_block(vision_client, source, message):
    messages = ask({"type": "image", "source": source})
    assert_error(vision_client.post("/v1/messages", json=body(messages=messages)), 400, "invalid_request_error",
                 message)


def test_at_most_100_images_per_request(vision_client):
    tiny = image_block(png_bytes((9, 9, 9), size=(2, 2)))
    assert vision_client.post("/v1/messages/count_tokens",
                              json=body(messages=ask(*[tiny] * 100), max_tokens=...)).status_code == 200
    assert_error(vision_client.post("/v1/messages/count_tokens", json=body(messages=ask(*[tiny] * 101),
                                                                            max_tokens=...)),
                 400, "invalid_request_error",
                 "messages.0.content.100: too many images in this request: at most 100 are allowed")
