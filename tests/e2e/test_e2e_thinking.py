"""Thinking budgets, signatures and stop sequences on the default model (prompted thinking), through the SDK."""
from pathlib import Path

import anthropic
import pytest
from transformers import AutoTokenizer

from app.engine.model.loader import converted_gguf_dir, default_gguf_path
from app.config import Config
from e2e_server import MODEL

PROMPTS = ["What is 17 + 25?", "Name three colours of the rainbow.", "Why is the sky blue?"]
COUNT = [{"role": "user", "content": "Count from 1 to 2000, separated by commas."}]


@pytest.fixture(scope="module")
def tokenizer(server):
    # The server has converted and cached the default model by now; its tokenizer re-counts the thinking text.
    return AutoTokenizer.from_pretrained(converted_gguf_dir(default_gguf_path(), Path(Config().data_dir)))


def think(client, budget, prompt, **extra):
    return client.messages.create(model=MODEL, max_tokens=budget + 40, messages=[{"role": "user", "content": prompt}],
                                  thinking={"type": "enabled", "budget_tokens": budget}, **extra)


@pytest.mark.parametrize("budget", [16, 48])
@pytest.mark.parametrize("prompt", PROMPTS)
def test_thinking_never_exceeds_the_budget(client, tokenizer, budget, prompt):
    message = think(client, budget, prompt, extra_body={"temperature": 1})
    block = message.content[0]
    assert block.type == "thinking" and block.signature
    figures = message.model_extra["thinkserve"]
    assert figures["budget_tokens"] == budget
    assert 0 < figures["thinking_tokens"] <= budget
    assert len(tokenizer(block.thinking, add_special_tokens=False).input_ids) <= budget
    # The answer follows the thinking unless max_tokens ran out inside it.
    if message.stop_reason != "max_tokens":
        assert [b.type for b in message.content[1:]] in (["text"], [])


def test_stream_helper_accumulates_thinking_and_signature(client):
    kwargs = dict(model=MODEL, max_tokens=60, messages=[{"role": "user", "content": PROMPTS[0]}],
                  thinking={"type": "enabled", "budget_tokens": 24}, extra_body={"temperature": 0})
    created = client.messages.create(**kwargs)
    with client.messages.stream(**kwargs) as stream:
        thinking_pieces = [e.thinking for e in stream if e.type == "thinking"]
        final = stream.get_final_message()
    assert "".join(thinking_pieces) == final.content[0].thinking == created.content[0].thinking
    assert final.content[0].signature == created.content[0].signature


def test_signed_thinking_round_trip_and_tampering(client):
    first = think(client, 16, PROMPTS[0], extra_body={"temperature": 0})
    history = [{"role": "user", "content": PROMPTS[0]},
               {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
               {"role": "user", "content": "And 17 + 26?"}]
    again = client.messages.create(model=MODEL, max_tokens=60, messages=history,
                                   thinking={"type": "enabled", "budget_tokens": 16})
    assert again.content[0].type == "thinking"
    history[1]["content"][0]["thinking"] += " (edited)"
    with pytest.raises(anthropic.BadRequestError, match=r"messages\.1\.content\.0: invalid thinking block"):
        client.messages.create(model=MODEL, max_tokens=60, messages=history)


@pytest.mark.parametrize("stream", [False, True])
def test_stop_sequence_ends_the_answer_before_it(client, stream):
    kwargs = dict(model=MODEL, max_tokens=60, messages=COUNT, stop_sequences=["7. 7"], extra_body={"temperature": 0})
    if stream:
        with client.messages.stream(**kwargs) as events:
            streamed = "".join(events.text_stream)
            message = events.get_final_message()
        assert streamed == message.content[0].text
    else:
        message = client.messages.create(**kwargs)
    # Greedy output here is "1. 1\n2. 2\n…"; "7. 7" spans several tokens.
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "7. 7"
    assert message.content[0].text.endswith("6. 6\n")


def test_a_budget_sweep_answers_each_budget_as_its_own_request_would(client):
    """`thinkserve: {"budget_sweep": [...]}` (extra_body): one trace, one answer per budget, each the one a request
    with that budget gets (greedy), for fewer generated tokens than one request per budget."""
    prompt = [{"role": "user", "content": "What is 17 * 23?"}]

    def create(budget, **extra):
        return client.messages.create(model=MODEL, max_tokens=100, messages=prompt, extra_body={
            "temperature": 0, **extra}, thinking={"type": "enabled", "budget_tokens": budget}).to_dict()

    def seen(message):
        return ([(b["type"], b.get("thinking", b.get("text"))) for b in message["content"]], message["stop_reason"],
                message["usage"]["output_tokens"])

    swept = create(64, thinkserve={"budget_sweep": [0, 16, 32, 64]})
    sweep = swept["thinkserve"]["budget_sweep"]
    answers = {answer["budget_tokens"]: answer for answer in sweep["answers"]}
    assert list(answers) == [0, 16, 32, 64] and answers[64]["source"] == "trace"
    assert swept["content"] == answers[64]["content"]
    for budget in (16, 32, 64):          # the server's smallest accepted budget is 16 (the e2e configuration)
        assert seen(answers[budget]) == seen(create(budget)), budget
    assert answers[0]["thinkserve"]["thinking_tokens"] == 0 and answers[0]["source"] == "plain"
    assert swept["usage"]["output_tokens"] == sweep["generated_tokens"] < sweep["separate_tokens"]
    assert sweep["separate_tokens"] == sum(answer["usage"]["output_tokens"] for answer in answers.values())
    with pytest.raises(anthropic.BadRequestError, match="budget_sweep"):
        client.messages.create(model=MODEL, max_tokens=100, messages=prompt, stream=True,
                               thinking={"type": "enabled", "budget_tokens": 64},
                               extra_body={"thinkserve": {"budget_sweep": [16, 64]}})
