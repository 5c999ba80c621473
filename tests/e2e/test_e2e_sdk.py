"""The official anthropic SDK against the real server on the default model."""
import asyncio

import anthropic
import pytest

from e2e_server import API_KEY, MODEL, prompt_tokens

HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]
GREEDY = {"temperature": 0}   # SDK 2.x no longer types sampling fields: they travel in extra_body


def test_create_returns_a_message_with_exact_usage(client):
    message = client.messages.create(model=MODEL, max_tokens=24, messages=HELLO, extra_body=GREEDY)
    assert message.id.startswith("msg_")
    assert message.model == MODEL
    assert message.content[0].type == "text" and message.content[0].text.strip()
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert 0 < message.usage.output_tokens <= 24
    counted = client.messages.count_tokens(model=MODEL, messages=HELLO)
    assert counted.input_tokens == prompt_tokens(message.usage)


def test_max_tokens_stop_reason(client):
    message = client.messages.create(model=MODEL, max_tokens=3, extra_body=GREEDY,
                                     messages=[{"role": "user", "content": "Write a long poem about the sea."}])
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3


def test_claude_alias_is_served_and_echoed(client):
    message = client.messages.create(model="claude-opus-5-5", max_tokens=5, messages=HELLO, extra_body=GREEDY)
    assert message.model == "claude-opus-5-5"


def test_stream_helpers_accumulate_the_same_text_as_create(client):
    created = client.messages.create(model=MODEL, max_tokens=20, messages=HELLO, extra_body=GREEDY)
    with client.messages.stream(model=MODEL, max_tokens=20, messages=HELLO, extra_body=GREEDY) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == final.content[0].text == created.content[0].text
    assert final.usage.output_tokens == created.usage.output_tokens
    assert final.stop_reason == created.stop_reason


def test_raw_stream_event_order(client):
    events = list(client.messages.create(model=MODEL, max_tokens=8, messages=HELLO, stream=True,
                                         extra_body=GREEDY))
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds[1] == "content_block_start" and kinds[-3] == "content_block_stop"
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert events[-2].usage.output_tokens == 8


def test_prefill_is_continued(client):
    message = client.messages.create(model=MODEL, max_tokens=10, extra_body=GREEDY, messages=[
        {"role": "user", "content": "Count from one to ten in words."},
        {"role": "assistant", "content": "One, two, three,"}])
    assert not message.content[0].text.startswith("One, two, three,")


def test_async_client(server):
    async def main():
        client = anthropic.AsyncAnthropic(base_url=server.base_url, api_key=API_KEY, max_retries=2)
        message = await client.messages.create(model=MODEL, max_tokens=5, messages=HELLO, extra_body=GREEDY)
        async with client.messages.stream(model=MODEL, max_tokens=5, messages=HELLO, extra_body=GREEDY) as s:
            final = await s.get_final_message()
        return message, final
    message, final = asyncio.run(main())
    assert message.content[0].text == final.content[0].text


def test_models(client):
    models = list(client.models.list())
    assert [m.id for m in models] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL


def test_errors(client, server):
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="gpt-4o", max_tokens=5, messages=HELLO)
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        client.messages.create(model=MODEL, max_tokens=-1, messages=HELLO)
    with pytest.raises(anthropic.BadRequestError, match=r"exceed context limit: \d+ \+ 100000 > 8192"):
        client.messages.create(model=MODEL, max_tokens=100000, messages=HELLO, timeout=30)
    wrong_key = anthropic.Anthropic(base_url=server.base_url, api_key="nope", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        wrong_key.messages.create(model=MODEL, max_tokens=5, messages=HELLO)


def test_token_figures_reach_the_sdk_and_its_stream_helpers_still_work(client):
    """`thinkserve: {"logprobs": k}` (extra_body): per-token figures in the `thinkserve` field, and the SDK's stream
    helpers accumulate the same message as without them."""
    asked = {**GREEDY, "thinkserve": {"logprobs": 2}}
    created = client.messages.create(model=MODEL, max_tokens=12, messages=HELLO, extra_body=asked)
    figures = created.to_dict()["thinkserve"]["logprobs"]["answer"]
    assert len(figures["tokens"]) == created.usage.output_tokens
    assert all(len(token["top"]) == 2 and token["logprob"] <= 0 for token in figures["tokens"])
    assert "".join(token["token"] for token in figures["tokens"]).strip() in created.content[0].text + "\n"
    with client.messages.stream(model=MODEL, max_tokens=12, messages=HELLO, extra_body=asked) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert final.content[0].text == created.content[0].text
    delta = [event for event in events if event.type == "message_delta"][-1]
    streamed = delta.to_dict()["thinkserve"]["logprobs"]["answer"]["tokens"]
    # The same tokens; the figures agree to float precision (the second request reads its prompt from the cache).
    assert [token["id"] for token in streamed] == [token["id"] for token in figures["tokens"]]
    assert all(abs(a["logprob"] - b["logprob"]) < 1e-3 for a, b in zip(streamed, figures["tokens"]))


def test_n_seeded_samples_of_one_prompt_in_one_response(client):
    """`thinkserve: {"n": 3, "seed": 5}`: three samples decoded together from one read of the prompt, each with its
    own seed (5, 6, 7), so the same request gives the same three again; the usage counts the prompt once."""
    asked = {"temperature": 1.0, "thinkserve": {"n": 3, "seed": 5}}
    first = client.messages.create(model=MODEL, max_tokens=16, messages=HELLO, extra_body=asked).to_dict()
    again = client.messages.create(model=MODEL, max_tokens=16, messages=HELLO, extra_body=asked).to_dict()
    samples = first["thinkserve"]["samples"]
    assert len(samples) == 3 and samples[0]["content"] == first["content"]
    assert [s["content"] for s in samples] == [s["content"] for s in again["thinkserve"]["samples"]]
    assert len({s["content"][0]["text"] for s in samples}) > 1
    assert first["usage"]["output_tokens"] == sum(s["usage"]["output_tokens"] for s in samples)
    assert prompt_tokens(anthropic.types.Usage(**first["usage"])) == prompt_tokens(
        anthropic.types.Usage(**samples[1]["usage"]))
    with pytest.raises(anthropic.BadRequestError, match="thinkserve.n"):
        client.messages.create(model=MODEL, max_tokens=16, messages=HELLO, stream=True, extra_body=asked)
