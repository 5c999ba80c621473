"""A base64 PNG through the official SDK: streamed by a real server on a tiny vision-language checkpoint (a random
Llava saved to disk, loaded as any Llava checkpoint is), counted exactly; refused by the default text model."""
import anthropic
import pytest
import requests

from app.launcher import ServerProcess
from e2e_server import API_KEY, MODEL, prompt_tokens
from image_bytes import image_block, png_bytes
from real_server import OUTPUT
from tiny_vlm import IMAGE_TOKENS, save_tiny_llava

PNG = png_bytes((200, 30, 30))
MESSAGES = [{"role": "user", "content": [image_block(PNG), {"type": "text", "text": "What colour is this?"}]}]


@pytest.fixture(scope="module")
def vlm_server(tmp_path_factory):
    checkpoint = save_tiny_llava(tmp_path_factory.mktemp("checkpoints") / "tiny-llava")
    data_dir = tmp_path_factory.mktemp("vlm-data")
    with ServerProcess("--model", str(checkpoint), "--api-key", API_KEY, "--data-dir", str(data_dir),
                       log_path=OUTPUT / "e2e-vlm-server.log") as running:
        yield running


@pytest.fixture(scope="module")
def vlm_client(vlm_server):
    return anthropic.Anthropic(base_url=vlm_server.base_url, api_key=API_KEY, max_retries=0)


def test_a_png_streams_an_answer_counted_as_count_tokens_counts(vlm_client):
    with vlm_client.messages.stream(model="tiny-llava", max_tokens=8, messages=MESSAGES,
                                    extra_body={"temperature": 0}) as stream:
        events = [event.type for event in stream]
        message = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert message.stop_reason in ("end_turn", "max_tokens") and message.usage.output_tokens >= 1
    counted = vlm_client.messages.count_tokens(model="tiny-llava", messages=MESSAGES).input_tokens
    assert prompt_tokens(message.usage) == counted
    text_only = vlm_client.messages.count_tokens(model="tiny-llava", messages=[
        {"role": "user", "content": [{"type": "text", "text": "What colour is this?"}]}]).input_tokens
    # The template's one <image> becomes the processor's run of placeholders (and the image's "\n\n" separator).
    assert counted >= text_only + IMAGE_TOKENS


def test_render_shows_where_the_image_sits(vlm_server):
    rendered = requests.post(vlm_server.base_url + "/v1/messages/render", headers={"x-api-key": API_KEY},
                          json={"model": "tiny-llava", "max_tokens": 8, "messages": MESSAGES}, timeout=60).json()
    assert rendered["images"] == 1
    assert "<|im_start|>user\n<image>\n\nWhat colour is this?<|im_end|>" in rendered["prompt"]


def test_the_same_png_to_the_default_model_is_a_clear_400(client):
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    message = raised.value.body["error"]["message"]
    assert message.startswith(f"messages.0.content.0: the served model {MODEL} cannot see images")
