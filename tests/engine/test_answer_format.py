"""An answer format (`output_schema`, Anthropic's output_config.format) through the whole engine: the grammar holds
the text answer to the schema on the tiny random model and on the real default model, alone, after thinking, and
with tools; schemas the grammar cannot enforce are refused at submit, before anything is generated."""
from __future__ import annotations

import json

import pytest
import torch
from engine_helpers import chat, final, text_of, thinking_of
from tool_fixtures import SCHEMAS, TOOLS, check_argument_streams

from app.engine.errors import ToolGrammarError
from app.engine.events import StopReason, TextDelta, ToolCallStart
from app.engine.request import Sampling, ThinkingSettings, ToolChoice
from app.engine.tools.answer_format import AnswerOrCallsParser, AnswerTextParser, answer_errors
from app.engine.tools.formats import GENERIC, LLAMA3
from app.engine.tools.grammar import ToolGrammarCompiler
from app.engine.tools.parser import ToolCallParser
from app.engine.tools.schema import validate_tool_input

# Nested objects, enums, arrays of objects, required and optional fields. Strings and arrays are bounded, so every
# answer fits in max_new_tokens: the grammar makes the JSON valid, but only a bound makes it end.
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "role": {"enum": ["engineer", "teacher", "artist", "doctor"]},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "address": {"type": "object", "properties": {
            "city": {"type": "string", "maxLength": 20},
            "country": {"type": "string", "enum": ["France", "Japan", "Brazil", "Kenya"]}},
            "required": ["city", "country"], "additionalProperties": False},
        "skills": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
            "type": "object", "properties": {"name": {"type": "string", "maxLength": 16},
                                             "level": {"enum": ["low", "mid", "high"]}},
            "required": ["name", "level"], "additionalProperties": False}},
        "remote": {"type": "boolean"},
    },
    "required": ["name", "role", "age", "address", "skills"],
    "additionalProperties": False,
}
ASK = "Invent a person and describe them as JSON: name, role, age, address, skills."
SAMPLES = 60


def formatted(schema=PERSON, **options):
    options.setdefault("max_new_tokens", 300)
    return chat(ASK, output_schema=schema, **options)


def check_answer(events, schema=PERSON) -> dict:
    """The run ended on its own and its text answer is JSON that satisfies `schema`, as the figures say too."""
    finished = final(events)
    text = text_of(events)
    assert finished.stop_reason is StopReason.END, (finished, text)
    value = json.loads(text)
    assert validate_tool_input(schema, value) == [], text
    assert finished.stats["output_format"]["valid"] is True and finished.stats["output_format"]["answer"] == "json"
    return value


# -- the parsers, on their own -----------------------------------------------------------------------------------

def feed_all(parser, pieces) -> list:
    events = [event for piece in pieces for event in parser.feed(piece)]
    return events + parser.flush()


def test_the_answer_parser_passes_text_on_and_keeps_it():
    parser = AnswerTextParser()
    assert feed_all(parser, ['{"a"', "", ': 1}']) == [TextDelta('{"a"'), TextDelta(': 1}')]
    assert parser.text == '{"a": 1}' and not parser.made_call and answer_errors({"type": "object"}, parser.text) == []
    assert answer_errors({"type": "object"}, '{"a": ')[0].startswith("the answer is not complete JSON")


@pytest.mark.parametrize("pieces", [["<tool", "_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}"
                                     "\n</tool_call>"],
                                    ["\n", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>"]])
def test_calls_or_json_the_start_decides_calls(pieces):
    parser = AnswerOrCallsParser(ToolCallParser(GENERIC, tool_names=SCHEMAS), GENERIC.trigger)
    events = feed_all(parser, pieces)
    assert parser.answered_with_calls and parser.made_call and [c.name for c in parser.calls] == ["get_weather"]
    assert not any(isinstance(event, TextDelta) for event in events)


def test_calls_or_json_a_json_answer_stays_text_even_with_the_trigger_inside():
    parser = AnswerOrCallsParser(ToolCallParser(GENERIC, tool_names=SCHEMAS), GENERIC.trigger)
    answer = '{"note": "write <tool_call> to call"}'
    events = feed_all(parser, ["\n", answer[:5], answer[5:]])
    assert "".join(event.text for event in events) == answer and parser.answer.text == answer
    assert not parser.made_call and not parser.answered_with_calls


def test_calls_or_json_an_undecided_start_is_the_answer_at_the_end():
    parser = AnswerOrCallsParser(ToolCallParser(GENERIC, tool_names=SCHEMAS), GENERIC.trigger)
    assert parser.feed("<to") == [] and parser.flush() == [TextDelta("<to")]


# -- refused before generation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("schema", [{"type": "array", "uniqueItems": True}, {"type": "object", "if": {}},
                                    {"type": "string", "format": "credit-card"}, {"type": 12}])
def test_an_unenforceable_schema_is_refused_at_submit(engine, schema):
    with pytest.raises(ToolGrammarError, match="the answer format's schema cannot be enforced"):
        engine.submit(formatted(schema))


def test_a_format_after_a_prefill_and_a_loose_strict_tool_are_refused_at_submit(engine):
    with pytest.raises(ToolGrammarError, match="prefill"):
        engine.submit(formatted(prefill='{"name": '))
    loose = {"type": "function", "function": {"name": "tag", "strict": True, "parameters": {
        "type": "object", "properties": {"tags": {"type": "array", "uniqueItems": True}}}}}
    with pytest.raises(ToolGrammarError, match="strict tool"):
        engine.submit(chat(tools=(loose,)))
    engine.submit(chat(tools=({"type": "function", "function": {**loose["function"], "strict": False}},)))


def test_calls_or_json_is_refused_where_a_call_is_bare_json(smollm_tokenizer):
    compiler = ToolGrammarCompiler(smollm_tokenizer)
    with pytest.raises(ToolGrammarError, match="llama3 tool-call format"):
        compiler.compile(TOOLS, ToolChoice("auto"), LLAMA3, answer_schema=PERSON)
    compiler.compile(TOOLS, ToolChoice("none"), LLAMA3, answer_schema=PERSON)     # JSON only: nothing to confuse


def test_format_grammars_are_cached_by_schema_and_thinking(smollm_tokenizer):
    compiler = ToolGrammarCompiler(smollm_tokenizer)
    first = compiler.compile((), ToolChoice(), GENERIC, answer_schema=PERSON)
    assert not first.cache_hit and first.answer_schema == PERSON
    assert compiler.compile((), ToolChoice(), GENERIC, answer_schema=dict(reversed(PERSON.items()))).cache_hit
    assert not compiler.compile((), ToolChoice(), GENERIC, answer_schema=PERSON, after_thinking=True).cache_hit
    # any / tool have no text answer: the format changes nothing, and the tool grammar is shared
    plain = compiler.compile(TOOLS, ToolChoice("any"), GENERIC)
    with_format = compiler.compile(TOOLS, ToolChoice("any"), GENERIC, answer_schema=PERSON)
    assert with_format.cache_hit and with_format.answer_schema is None and with_format.compiled is plain.compiled


# -- the tiny random model: whatever it prefers, the answer is schema JSON ------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_the_random_model_answers_with_schema_json(engine, seed):
    torch.manual_seed(seed)
    check_answer(list(engine.submit(formatted(sampling=Sampling(temperature=1.0))).events()))


def test_the_random_model_thinks_first_then_answers_with_schema_json(engine):
    events = list(engine.submit(formatted(thinking=ThinkingSettings(budget_tokens=24))).events())
    check_answer(events)
    assert thinking_of(events) and final(events).stats["thinking_tokens"] <= 24


@pytest.mark.parametrize("seed", range(4))
def test_with_tools_under_auto_the_answer_is_calls_or_schema_json(engine, seed):
    torch.manual_seed(seed)
    events = list(engine.submit(formatted(tools=tuple(TOOLS), tool_choice=ToolChoice("auto"),
                                          sampling=Sampling(temperature=1.0))).events())
    finished = final(events)
    if any(isinstance(event, ToolCallStart) for event in events):
        assert finished.stop_reason is StopReason.TOOL_CALL and not text_of(events).strip()
        assert finished.stats["output_format"]["answer"] == "calls"
        for event, tool_input in zip([e for e in events if isinstance(e, ToolCallStart)],
                                     check_argument_streams(events)):
            assert validate_tool_input(SCHEMAS[event.name], tool_input) == []
    else:
        check_answer(events)


def test_with_tools_under_none_the_answer_is_schema_json(engine):
    check_answer(list(engine.submit(formatted(tools=tuple(TOOLS), tool_choice=ToolChoice("none"))).events()))


# -- the real default model, sampled ----------------------------------------------------------------------------

def test_the_default_model_answers_with_schema_json_every_time(make_engine, default_model):
    """SAMPLES answers at temperature 1, submitted together so the step loop batches them: every one parses and
    satisfies the schema (nested objects, enums, an array of objects, required fields)."""
    engine = make_engine(loaded=default_model)
    torch.manual_seed(0)
    handles = [engine.submit(formatted(sampling=Sampling(temperature=1.0))) for _ in range(SAMPLES)]
    values = [check_answer(list(handle.events(timeout=300))) for handle in handles]
    assert len(values) == SAMPLES
    # Sampled, not one answer sixty times; the enums are used, not just the first value.
    assert len({json.dumps(value, sort_keys=True) for value in values}) > SAMPLES // 2
    assert len({value["role"] for value in values}) > 1
    print(f"\n{SAMPLES} of {SAMPLES} sampled answers parsed and satisfied the schema")


def test_the_default_model_thinks_then_answers_with_schema_json(make_engine, default_model):
    engine = make_engine(loaded=default_model, min_thinking_budget=1)
    torch.manual_seed(1)
    request = formatted(sampling=Sampling(temperature=1.0), thinking=ThinkingSettings(budget_tokens=40))
    for handle in [engine.submit(request) for _ in range(4)]:
        events = list(handle.events(timeout=300))
        check_answer(events)
        assert final(events).stats["thinking_tokens"] <= 40
