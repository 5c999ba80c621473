"""The tool grammar on the real default model (SmolLM2-135M-Instruct), through `model.generate`.

Every tool_choice is run greedily and with temperature 1; the sampled runs are ten rows of one `generate` call
(`num_return_sequences`, fixed seed): ten independent samples for the price of a batch. The outputs are read back
with the tool parser and each call's input is checked against its schema with jsonschema.
"""
from __future__ import annotations

import pytest
import torch
from tool_fixtures import SCHEMAS, TOOLS, WEATHER, parse_pieces, text_of
from transformers import LogitsProcessor

from app.engine.tools.formats import GENERIC, generic_tool_instructions
from app.engine.tools.grammar import ToolChoice, compile_tool_grammar, make_tool_logits_processor, model_vocab_size
from app.engine.tools.schema import validate_tool_input

SAMPLED_ROWS = 10
SHORT_SYSTEM = "You can use the tools get_weather and create_ticket."
BEGGING = "Call the get_weather tool for Paris right now. Answer with a <tool_call> block only."


@pytest.fixture
def loaded(default_model):
    return default_model


def prompt(loaded, system: str, user: str) -> list[int]:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return loaded.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                return_dict=True)["input_ids"]


def tool_grammar(loaded, choice: ToolChoice, tools=TOOLS):
    return compile_tool_grammar(loaded.tokenizer, tools, choice, GENERIC, vocab_size=model_vocab_size(loaded.model))


def generate(loaded, ids: list[int], processors: list, *, rows: int = 0, max_new_tokens: int) -> list[tuple]:
    """Greedy when rows == 0, else `rows` samples at temperature 1. Returns (text, ended_turn) per output."""
    end = sorted(loaded.end_of_turn_ids)
    sampling = {"do_sample": True, "temperature": 1.0, "top_k": None, "top_p": None, "num_return_sequences": rows} \
        if rows else {"do_sample": False, "temperature": None, "top_k": None, "top_p": None}
    torch.manual_seed(0)
    input_ids = torch.tensor([ids])
    output = loaded.model.generate(input_ids, attention_mask=torch.ones_like(input_ids), logits_processor=processors,
                                   max_new_tokens=max_new_tokens, eos_token_id=end, pad_token_id=end[0], **sampling)
    return [(loaded.tokenizer.decode(row, skip_special_tokens=True), any(t in end for t in row))
            for row in output[:, len(ids):].tolist()]


def grammar_runs(loaded, ids, choice: ToolChoice, *, max_new_tokens: int, tools=TOOLS) -> list[tuple]:
    grammar = tool_grammar(loaded, choice, tools)
    runs = []
    for rows in (0, SAMPLED_ROWS):
        processor = make_tool_logits_processor(grammar, loaded.end_of_turn_ids)     # fresh per generate call
        runs += generate(loaded, ids, [processor], rows=rows, max_new_tokens=max_new_tokens)
    return runs


def calls_in(text: str) -> tuple[list, str]:
    events, parser = parse_pieces(GENERIC, [text], tool_names=list(SCHEMAS))
    return parser.calls, text_of(events)


def assert_valid(call):
    assert call.complete, call
    assert validate_tool_input(SCHEMAS[call.name], call.input) == [], call


def test_any_with_one_call_gives_exactly_one_valid_call_then_ends_the_turn(loaded):
    ids = prompt(loaded, SHORT_SYSTEM,
                 "The office printer is broken again, please open a ticket for Sam from the red team.")
    for text, ended in grammar_runs(loaded, ids, ToolChoice("any", disable_parallel=True), max_new_tokens=96):
        calls, free_text = calls_in(text)
        assert len(calls) == 1 and free_text == "", text
        assert_valid(calls[0])
        assert ended, text


def test_a_named_tool_with_a_demanding_schema_is_always_valid(loaded):
    ids = prompt(loaded, SHORT_SYSTEM, "What is the weather in Oslo?")
    runs = grammar_runs(loaded, ids, ToolChoice("tool", name="create_ticket"), max_new_tokens=96)
    for text, ended in runs:
        calls, free_text = calls_in(text)
        assert [c.name for c in calls] == ["create_ticket"] and free_text == "", text
        assert_valid(calls[0])
        assert ended, text
    assert len({text for text, _ in runs}) > 5                  # the samples really differ


def test_any_with_parallel_calls_is_nothing_but_valid_calls(loaded):
    ids = prompt(loaded, SHORT_SYSTEM, "Weather in Rome and Oslo?")
    processor = make_tool_logits_processor(tool_grammar(loaded, ToolChoice("any")), loaded.end_of_turn_ids)
    ((text, _),) = generate(loaded, ids, [processor], max_new_tokens=48)
    calls, free_text = calls_in(text)
    assert calls and free_text == "", text
    for call in calls[:-1]:
        assert_valid(call)
    assert calls[-1].complete is False or validate_tool_input(SCHEMAS[calls[-1].name], calls[-1].input) == []


def test_none_never_opens_a_call_even_when_begged(loaded):
    ids = prompt(loaded, generic_tool_instructions([WEATHER]), BEGGING)
    ((unconstrained, _),) = generate(loaded, ids, [], max_new_tokens=8)
    assert unconstrained.startswith("<tool_call>")             # the prompt does make it want to call
    for text, _ in grammar_runs(loaded, ids, ToolChoice("none"), max_new_tokens=16, tools=[WEATHER]):
        assert "<tool_call>" not in text, text


def test_auto_without_parallel_calls_makes_at_most_one_call(loaded):
    ids = prompt(loaded, generic_tool_instructions([WEATHER]), BEGGING)
    runs = grammar_runs(loaded, ids, ToolChoice("auto", disable_parallel=True), max_new_tokens=40, tools=[WEATHER])
    called = 0
    for text, ended in runs:
        calls, _ = calls_in(text)
        assert len(calls) <= 1, text
        if calls and calls[0].complete:
            called += 1
            assert_valid(calls[0])
            after_call = text.rsplit("}", 1)[1]     # nothing but the closing tag (unless the token limit cut it)
            assert after_call == "\n</tool_call>" if ended else "\n</tool_call>".startswith(after_call), text
    assert called >= 1                                          # greedy calls; so does a share of the samples


class ForcedThinking(LogitsProcessor):
    """Forces a thinking section token by token, then hands over to the tool grammar, as a budget processor does."""

    def __init__(self, token_ids: list[int], hand_over):
        self.token_ids, self.hand_over, self.position = token_ids, hand_over, 0

    def __call__(self, input_ids, scores):
        if self.position < len(self.token_ids):
            forced = self.token_ids[self.position]
            scores[:, :] = float("-inf")
            scores[:, forced] = 0.0
        elif self.position == len(self.token_ids):
            self.hand_over()       # the closing marker is in input_ids now: the grammar picks this step's token
        self.position += 1
        return scores


def test_the_grammar_takes_over_right_after_thinking(loaded):
    ids = prompt(loaded, SHORT_SYSTEM, "Weather in Rome?")
    grammar = tool_grammar(loaded, ToolChoice("any", disable_parallel=True))
    tools = make_tool_logits_processor(grammar, loaded.end_of_turn_ids, active=False)
    thinking = "<think>\nThe user wants the weather.\n</think>\n\n"
    forced = ForcedThinking(loaded.tokenizer.encode(thinking), tools.activate)
    ((text, ended),) = generate(loaded, ids, [forced, tools], max_new_tokens=64)
    assert text.startswith(thinking), text
    calls, free_text = calls_in(text[len(thinking):])
    assert len(calls) == 1 and free_text == "" and ended, text
    assert_valid(calls[0])
