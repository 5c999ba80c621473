"""What a user does in the playground, in a real browser against the real server on the default model:
enter the key, stream a request, read the events and the rendered prompt, think, call a tool and answer it.
Requests are kept to a few tokens, so the file takes about half a minute on an idle CPU."""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from browser_helpers import API_KEY, CHROMIUM, OUTPUT
from image_bytes import png_bytes
from pdf_bytes import pdf_bytes

if not shutil.which(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing: `make setup-dev` installs Debian's chromium with apt-get "
                "(Playwright must not download a browser of its own)", allow_module_level=True)
expect = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements-dev.txt").expect

GENERATION_MS = 90_000      # a busy CI machine can take a few seconds per token


def screenshot(page, name: str) -> None:
    page.evaluate("document.getElementById('compose').scrollTop = 0")   # filling fields scrolled it
    page.screenshot(path=str(OUTPUT / f"playground-{name}.png"), full_page=True)


def compose(page, *, text: str, max_tokens: int, temperature: str = "0") -> None:
    expect(page.locator("#model")).to_have_value("SmolLM2-135M-Instruct")
    page.locator("#turns .content").first.fill(text)
    page.fill("#max-tokens", str(max_tokens))
    page.fill("#temperature", temperature)


def wait_for_the_end(page) -> None:
    """Until the stream's message_stop, or an error (HTTP or `event: error`), which fails the test at once."""
    expect(page.locator("#events .event-message_stop, #error:not([hidden])").first).to_be_visible(
        timeout=GENERATION_MS)
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#events .event").last).to_have_class("event event-message_stop")


def send_and_wait(page) -> None:
    page.click("#send")
    wait_for_the_end(page)


def event_names(page) -> list[str]:
    return page.locator("#events .event .name").all_inner_texts()


def outcome(page, name: str) -> str:
    return page.locator(f"#outcome .value-{name.replace('.', '-')}").inner_text()


def test_the_key_is_entered_once_and_kept(fresh):
    page = fresh.page
    # Without the key the API answers 401, and the page says what to do about it.
    expect(page.locator("#error")).to_contain_text("authentication_error")
    expect(page.locator("#error")).to_contain_text("enter the server's API key")
    page.fill("#api-key", API_KEY)
    page.locator("#api-key").press("Tab")           # "change" fires when the field loses focus
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#model")).to_have_value("SmolLM2-135M-Instruct")
    expect(page.locator("#prompt-tokens")).to_contain_text("tokens")
    page.reload()
    expect(page.locator("#api-key")).to_have_value(API_KEY)
    expect(page.locator("#prompt-tokens")).to_contain_text("tokens")
    expect(page.locator("#error")).to_be_hidden()


def test_stream_shows_text_events_figures_and_the_prompt(page):
    compose(page, text="Say hello to my students.", max_tokens=8)
    send_and_wait(page)
    names = event_names(page)
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert {"content_block_start", "content_block_delta", "content_block_stop", "message_delta"} <= set(names)
    assert page.locator("#events .event .ms").first.inner_text().startswith("+")
    text = page.locator("#message .block.text")
    expect(text).to_have_count(1)
    assert text.inner_text().strip()
    assert outcome(page, "stop_reason") in ("end_turn", "max_tokens")
    assert 1 <= int(outcome(page, "output_tokens")) <= 8
    expect(page.locator("#ttft")).to_have_text(re.compile(r"^\d+ ms$"))
    # What the model sees: the chat template's rendering, counted as the request's usage counts it.
    prompt = page.locator("#prompt")
    expect(prompt).to_contain_text("Say hello to my students.")
    expect(prompt.locator(".special").first).to_have_text("<|im_start|>")
    prompt_tokens = sum(int(outcome(page, name)) for name in
                        ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))
    expect(page.locator("#prompt-tokens")).to_have_text(f"{prompt_tokens} tokens")
    screenshot(page, "stream")
    # Multi-turn: the reply joins the conversation as content blocks, followed by an empty user turn to fill in.
    page.click("#continue")
    expect(page.locator("#turns .turn")).to_have_count(3)
    reply = json.loads(page.locator("#turns .turn .content").nth(1).input_value())
    assert reply == [{"type": "text", "text": text.inner_text()}]


def test_render_button_shows_the_prompt_with_a_prefill(page):
    expect(page.locator("#prompt-tokens")).to_contain_text("tokens")
    page.click("#add-assistant")
    page.locator("#turns .content").last.fill("Once upon a time")
    page.click("#render")
    expect(page.locator("#prompt")).to_contain_text("assistant\nOnce upon a time")
    rendered = page.locator("#prompt").inner_text()
    assert not rendered.rstrip().endswith("<|im_end|>")     # the prefill is continued, not closed


def test_an_attached_pdf_becomes_a_document_block_the_model_reads(page):
    page.locator("#turns .content").first.fill("What is on the list?")
    page.locator("#turns .attach-file").first.set_input_files(files=[{
        "name": "list.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes("Apples and bread", "Coffee")}])
    expect(page.locator("#turns .kind").first).to_have_text("content blocks (JSON)")
    blocks = json.loads(page.locator("#turns .content").first.input_value())
    assert [b["type"] for b in blocks] == ["document", "text"] and blocks[0]["title"] == "list.pdf"
    page.click("#render")
    prompt = page.locator("#prompt")
    expect(prompt).to_contain_text('<page number="1">\nApples and bread\n</page>')
    expect(prompt).to_contain_text('<page number="2">\nCoffee\n</page>')
    screenshot(page, "document")


def test_an_attached_image_becomes_an_image_block_and_the_text_model_names_itself(page):
    # The browser tests serve the default model, which reads text only: "What the model sees" shows its 400.
    page.locator("#turns .content").first.fill("What colour is this?")
    page.locator("#turns .attach-file").first.set_input_files(files=[{
        "name": "red.png", "mimeType": "image/png", "buffer": png_bytes((200, 30, 30))}])
    expect(page.locator("#turns .kind").first).to_have_text("content blocks (JSON)")     # the file is read async
    blocks = json.loads(page.locator("#turns .content").first.input_value())
    assert [b["type"] for b in blocks] == ["image", "text"]
    assert blocks[0]["source"]["media_type"] == "image/png"
    assert base64.b64decode(blocks[0]["source"]["data"]) == png_bytes((200, 30, 30))
    page.click("#render")
    expect(page.locator("#prompt")).to_contain_text("400 invalid_request_error: messages.0.content.0: the served "
                                                    "model SmolLM2-135M-Instruct")
    expect(page.locator("#prompt")).to_contain_text("cannot see images")


def test_thinking_block_within_the_budget(page):
    # The forced close (the end marker and its newlines) is part of the budget: 8 leaves a few visible tokens.
    compose(page, text="What is 7 times 6?", max_tokens=10)
    page.check("#thinking-enabled")
    page.fill("#thinking-budget", "8")
    send_and_wait(page)
    thinking = page.locator("#message details.block.thinking")
    expect(thinking).to_have_count(1)
    assert thinking.locator("pre").inner_text().strip()
    expect(thinking.locator(".signature")).to_contain_text("signature ")
    assert int(outcome(page, "thinkserve.thinking_tokens")) <= 8
    assert outcome(page, "thinkserve.budget_tokens") == "8"
    expect(page.locator("#thinking-figure")).to_have_text(f"{outcome(page, 'thinkserve.thinking_tokens')} / 8")
    assert "thinking_delta" in page.locator("#events").inner_text()
    screenshot(page, "thinking")
    thinking.locator("summary").click()                     # collapsible
    expect(thinking.locator("pre")).to_be_hidden()


def test_stop_cancels_the_stream(page):
    compose(page, text="Tell me a long story about a dragon.", max_tokens=400)
    page.click("#send")
    expect(page.locator("#events .event-content_block_delta").first).to_be_attached(timeout=GENERATION_MS)
    page.click("#stop")
    expect(page.locator("#error")).to_contain_text("stopped")
    expect(page.locator("#send")).to_be_enabled()
    assert "message_stop" not in event_names(page)


def test_api_errors_are_shown_in_the_envelope(page):
    # Anthropic refuses thinking with a forced tool call; the page shows the server's 400 as it came.
    page.check("#thinking-enabled")
    page.check("#tools-enabled")
    page.select_option("#tool-choice", "tool")
    page.click("#send")
    error = page.locator("#error")
    expect(error).to_contain_text("400 invalid_request_error: Thinking may not be enabled when tool_choice forces")
    expect(error).to_contain_text("req_")
    expect(page.locator("#events .event")).to_have_count(0)


def test_forced_tool_call_and_the_tool_result_loop(page):
    compose(page, text="What is the weather in Paris?", max_tokens=48)
    page.check("#tools-enabled")
    page.select_option("#tool-choice", "tool")
    expect(page.locator("#tool-name")).to_have_value("get_weather")
    send_and_wait(page)
    tool_use = page.locator("#message .block.tool-use")
    expect(tool_use).to_have_count(1)
    expect(tool_use.locator(".tool-name")).to_have_text("get_weather")
    call_input = json.loads(tool_use.locator(".tool-input").inner_text())
    assert isinstance(call_input.get("city"), str)       # the schema's required field
    assert outcome(page, "stop_reason") == "tool_use"
    assert json.loads(outcome(page, "thinkserve.tool_grammar"))["mode"] == "tool"
    assert "input_json_delta" in page.locator("#events").inner_text()
    screenshot(page, "tool-call")

    # Play the tool: answer the call, and send the conversation again (a short, unforced reply this time).
    page.locator("#tool-results textarea").fill('{"temperature": 18, "conditions": "sunny"}')
    page.select_option("#tool-choice", "auto")
    page.fill("#max-tokens", "4")
    page.click("#send-result")
    expect(page.locator("#turns .turn")).to_have_count(3)
    assistant, result = (json.loads(page.locator("#turns .turn .content").nth(i).input_value()) for i in (1, 2))
    assert assistant[-1]["type"] == "tool_use" and assistant[-1]["name"] == "get_weather"
    assert result == [{"type": "tool_result", "tool_use_id": assistant[-1]["id"],
                       "content": '{"temperature": 18, "conditions": "sunny"}'}]
    wait_for_the_end(page)
    expect(page.locator("#prompt")).to_contain_text('"conditions": "sunny"')


def test_copy_as_python_sdk_runs(page, server):
    compose(page, text="Say hi.", max_tokens=3, temperature="0.5")
    page.click("#copy-python")
    snippet = page.locator("#snippet").input_value()
    assert 'extra_body={"temperature": 0.5}' in snippet and "temperature=" not in snippet.split("extra_body")[0]
    page.keyboard.press("Escape")
    page.click("#copy-curl")
    curl = page.locator("#snippet").input_value()
    assert curl.startswith(f"curl -N {server.base_url}/v1/messages") and '"x-api-key: $ANTHROPIC_API_KEY"' in curl
    # The SDK snippet is a working program: run it against the server.
    ran = subprocess.run([sys.executable, "-c", snippet], check=False, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "ANTHROPIC_API_KEY": API_KEY})
    assert ran.returncode == 0, ran.stderr
    final_message = ran.stdout[ran.stdout.rindex("\n{\n"):]      # printed after the streamed text
    assert json.loads(final_message)["stop_reason"] in ("end_turn", "max_tokens")


# --- the tool loop's bookkeeping, on scripted replies ---------------------------------------------------------
# The real server cannot show this part: a forced tool call excludes thinking, and the default model rarely
# calls a tool on its own. So /v1/messages answers from a script here, and the test reads what the page sends.

def sse(*events) -> str:
    return "".join(f"event: {data['type']}\ndata: {json.dumps(data)}\n\n" for data in events)


def block_events(index, block, *deltas):
    return [{"type": "content_block_start", "index": index, "content_block": block},
            *({"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas),
            {"type": "content_block_stop", "index": index}]


def scripted_reply(stop_reason, *blocks):
    usage = {"input_tokens": 50, "output_tokens": 20}
    start = {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "SmolLM2-135M-Instruct", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 0}}}
    end = [{"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": usage},
           {"type": "message_stop"}]
    return sse(start, {"type": "ping"}, *(event for block in blocks for event in block), *end)


TOOL_CALL = scripted_reply(
    "tool_use",
    block_events(0, {"type": "thinking", "thinking": "", "signature": ""},
                 {"type": "thinking_delta", "thinking": "I need the weather."},
                 {"type": "signature_delta", "signature": "c2lnbmVk"}),
    block_events(1, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
                 {"type": "input_json_delta", "partial_json": '{"city": "Pa'},
                 {"type": "input_json_delta", "partial_json": 'ris", "unit": "celsius"}'}))
ANSWER = scripted_reply("end_turn", block_events(0, {"type": "text", "text": ""},
                                                 {"type": "text_delta", "text": "It is sunny."}))


def test_tool_loop_sends_back_thinking_tool_use_and_results(page):
    replies, sent = [TOOL_CALL, ANSWER], []

    def reply(route):
        sent.append(route.request.post_data_json)
        route.fulfill(status=200, content_type="text/event-stream", body=replies[len(sent) - 1])

    page.route("**/v1/messages", reply)
    compose(page, text="Weather in Paris?", max_tokens=100)
    page.check("#thinking-enabled")
    page.check("#tools-enabled")
    send_and_wait(page)
    expect(page.locator("#message .tool-input")).to_have_text(
        json.dumps({"city": "Paris", "unit": "celsius"}, indent=2))
    expect(page.locator("#tool-results legend")).to_contain_text("get_weather toolu_1")
    page.locator("#tool-results textarea").fill("weather service unavailable")
    page.locator("#tool-results input[type=checkbox]").check()
    page.click("#send-result")
    expect(page.locator("#message .block.text")).to_have_text("It is sunny.")

    assert sent[0]["tools"][0]["name"] == "get_weather" and sent[0]["tool_choice"] == {"type": "auto"}
    assert sent[0]["thinking"] == {"type": "enabled", "budget_tokens": 64}
    assert sent[1]["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I need the weather.", "signature": "c2lnbmVk"},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
             "input": {"city": "Paris", "unit": "celsius"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": "weather service unavailable", "is_error": True}]}]
    screenshot(page, "tool-loop")


def test_an_error_event_mid_stream_is_shown(page):
    # After the headers are out, a failure can only arrive as `event: error`, in the same envelope as HTTP errors.
    failure = {"type": "error", "error": {"type": "api_error", "message": "generation failed: out of memory"},
               "request_id": "req_1"}
    stream = TOOL_CALL.split("event: content_block_start")[0] + sse(failure)
    page.route("**/v1/messages", lambda route: route.fulfill(status=200, content_type="text/event-stream",
                                                             body=stream))
    compose(page, text="hi", max_tokens=5)
    page.click("#send")
    expect(page.locator("#error")).to_have_text("event: error · api_error: generation failed: out of memory (req_1)")
    expect(page.locator("#events .event").last).to_have_class("event event-error")
    expect(page.locator("#send")).to_be_enabled()
