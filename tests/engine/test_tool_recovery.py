"""Drifted tool calls (bare JSON, fenced JSON, other wrapper tags) at the start of an answer are taken over by the
grammar and become valid calls of offered tools; JSON that is not a call stays text.

The engine tests script the opening tokens of the answer through a forward hook on a tiny Llama (the model then
goes on by itself, held to the grammar), so each drift is produced on purpose, through the real step loop."""
from __future__ import annotations

import pytest
import xgrammar as xgr
from engine_helpers import build_tiny_llama, chat, final
from tool_fixtures import WEATHER

from app.engine.events import TextDelta, ToolCallStart
from app.engine.request import ToolChoice
from app.engine.tools.formats import GENERIC, HERMES, LLAMA3, MISTRAL
from app.engine.tools.grammar import compiler_for
from app.engine.tools.parser import ToolCallParser
from app.engine.tools.recovery import UNDECIDED, RecoveringToolCallParser, drift_form


@pytest.mark.parametrize("text, form", [
    ('{"name"', "bare_json"),
    ('\n  { "name"', "bare_json"),
    ('[{"name"', "bare_json"),
    ('{\n  "name"', "bare_json"),                 # pretty-printed, as Qwen2.5-Coder 0.5B writes half its calls
    ('```json\n{"name"', "fenced_json"),
    ('```\n{ "name"', "fenced_json"),
    ('<function_call>\n{"name"', "tag:<function_call>"),
    ('<tools>{"name"', "tag:<tools>"),
])
def test_drifted_openings_are_recognised_at_the_name_key(text, form):
    assert drift_form(text) == (form, len(text))
    assert drift_form(text[:-3]) == UNDECIDED        # not yet: the key is not complete


@pytest.mark.parametrize("text", [
    '{"city": "Paris"}',                # JSON, but not a call
    '{\n  "version": "1.0", "name": "x"',  # "name" is not the first key
    'Here is the call: {"name"',        # not at the start of the answer
    '```python\nprint(1)',
    "<tool_call>",                      # the native trigger: the grammar's own business
    "Sure!",
])
def test_other_answers_are_not_drifts(text):
    assert drift_form(text) is None


def test_whitespace_alone_is_undecided():
    assert drift_form("\n\n ") == UNDECIDED


def recovering(take_over=lambda written: True, fmt=HERMES):
    seen = []

    def record(written):
        seen.append(written)
        return take_over(written)
    return RecoveringToolCallParser(ToolCallParser(fmt, tool_names={"get_weather"}), fmt, record), seen


CALL_REST = ': "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>'


@pytest.mark.parametrize("pieces", [
    ['```json\n{"name"' + CALL_REST],
    list('```json\n{"name"' + CALL_REST),                    # a character at a time
    ['```json\n{ "name', '": "get_', CALL_REST[7:]],          # the separator split across pieces
])
def test_a_recovered_call_is_read_as_a_native_one(pieces):
    parser, seen = recovering()
    events = [event for piece in pieces for event in parser.feed(piece)] + parser.flush()
    assert not any(isinstance(event, TextDelta) for event in events)
    assert [event.name for event in events if isinstance(event, ToolCallStart)] == ["get_weather"]
    assert parser.calls[0].input == {"city": "Paris", "unit": "celsius"} and parser.calls[0].complete
    assert parser.forms() == ["fenced_json"] and len(seen) == 1


def test_when_the_grammar_cannot_take_the_text_it_stays_text():
    parser, _ = recovering(take_over=lambda written: False)
    events = parser.feed('{"name": "Cat"}') + parser.flush()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == '{"name": "Cat"}'
    assert parser.calls == [] and parser.forms() == []


def test_an_answer_that_ends_undecided_is_text():
    parser, seen = recovering()
    events = parser.feed("```") + parser.flush()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "```" and seen == []


@pytest.mark.parametrize("fmt, rest", [
    (HERMES, CALL_REST),
    (GENERIC, ':"get_weather", "arguments": {"city": "Rome", "unit": "fahrenheit"}}\n</tool_call>'),
    (LLAMA3, ' : "get_weather", "parameters": {"city": "Rome", "unit": "celsius"}}'),
    (MISTRAL, ': "get_weather", "arguments": {"city": "Rome", "unit": "celsius"}}]'),
])
def test_the_recovery_grammar_finishes_one_native_call_of_an_offered_tool(smollm_tokenizer, fmt, rest):
    grammar = compiler_for(smollm_tokenizer).compile([WEATHER], ToolChoice("auto"), fmt)
    matcher = xgr.GrammarMatcher(grammar.recovery)
    assert matcher.accept_string(rest) and matcher.is_completed()
    assert not xgr.GrammarMatcher(grammar.recovery).accept_string(': "Cat"')      # never a tool not offered


def test_only_auto_has_a_recovery_grammar(smollm_tokenizer):
    compiler = compiler_for(smollm_tokenizer)
    assert all(compiler.compile([WEATHER], ToolChoice(mode, name="get_weather" if mode == "tool" else None),
                                HERMES).recovery is None for mode in ("any", "tool", "none"))


# -- through the engine -------------------------------------------------------------------------------------------

@pytest.fixture
def scripted_engine(make_engine, smollm_tokenizer):
    """An engine on a tiny Llama whose answer starts with scripted text; then the model goes on by itself."""
    model = build_tiny_llama(smollm_tokenizer)
    state = {"ids": [], "prompt_length": 0}

    def force_script(module, args, kwargs, output):
        for row, position in enumerate(kwargs["position_ids"][:, -1].tolist()):
            index = position - (state["prompt_length"] - 1)      # the answer token these logits choose
            if 0 <= index < len(state["ids"]):
                output.logits[row, -1, :] = -1e4
                output.logits[row, -1, state["ids"][index]] = 1e4
        return output

    hook = model.register_forward_hook(force_script, with_kwargs=True)
    engine = make_engine(model=model, no_prefix_cache=True)

    def run(script: str, request):
        state["ids"] = smollm_tokenizer.encode(script, add_special_tokens=False)
        state["prompt_length"] = len(engine.prepare(request).ids)
        return list(engine.submit(request).events(timeout=120))

    yield run
    hook.remove()


def weather_request(**options):
    options.setdefault("tools", (WEATHER,))
    options.setdefault("tool_choice", ToolChoice("auto"))
    return chat("What's the weather in Paris?", max_new_tokens=60, **options)


@pytest.mark.parametrize("script, form", [
    ('{"name": "get_weather", "arguments": {"city": "Paris"}}', "bare_json"),
    ('```json\n{ "name": "get_weather", "arguments": { "city": "Paris" } }\n```', "fenced_json"),
    ('<function_call>{"name": "get_weather"', "tag:<function_call>"),
    ('{\n  "name": "get_weather",\n  "arguments": {}\n}', "bare_json"),
    ('{"name": "Cat", "arguments": {"file_path": "notes.txt"}}', "bare_json"),     # a tool never offered
])
def test_a_drifted_call_becomes_a_valid_call_of_an_offered_tool(scripted_engine, script, form):
    events = scripted_engine(script, weather_request())
    last = final(events)
    assert [e.name for e in events if isinstance(e, ToolCallStart)] == ["get_weather"]
    assert not "".join(e.text for e in events if isinstance(e, TextDelta)).strip()
    assert last.stop_reason.value in ("tool_call", "length")
    assert last.stats["tool_call_forms"] == [form] and last.stats["tool_grammar"]["recovered"]
    if last.stop_reason.value == "tool_call":
        assert "tool_input_errors" not in last.stats


@pytest.mark.parametrize("script, options", [
    ('{"version": "1.0.0", "name": "my-app"}', {}),                           # JSON, but not a call
    ('Here it is: {"name": "my-app"}', {}),                                   # not at the answer's start
    ('{"name": "my-app"}', {"tool_choice": ToolChoice("none")}),
    ('{"name": "my-app"}', {"tools": (), "tool_choice": ToolChoice("auto")}),  # no tools
    ('{"name": "my-app"}', {"prefill": "Here it is:"}),                       # not the answer's start
])
def test_json_that_is_not_a_call_stays_text(scripted_engine, script, options):
    request = weather_request(**options)
    events = scripted_engine(script, request)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text.startswith(script) and not any(isinstance(e, ToolCallStart) for e in events)
    assert not final(events).stats.get("tool_grammar", {}).get("recovered")
