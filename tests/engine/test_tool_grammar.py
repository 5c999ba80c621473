"""Tool grammars on the real SmolLM2 tokenizer, without a model: what each tool_choice lets through, the caches,
and the logits processor on synthetic logits."""
from __future__ import annotations

import pytest
import torch
import xgrammar as xgr
from tool_fixtures import TICKET, TOOLS, WEATHER

from app.engine.tools.formats import FORMATS, GENERIC, HERMES, MISTRAL, render_tool_call, render_tool_calls
from app.engine.tools.grammar import (ToolChoice, ToolGrammarError, compile_tool_grammar,
                                     make_tool_logits_processor)
from app.engine.tools.processor import ToolGrammarViolation, generated_ends_with

END = 2                                    # SmolLM2's <|im_end|>
PARIS = ("get_weather", {"city": "Paris", "unit": "celsius"})
TICKET_CALL = ("create_ticket", {"title": "Printer", "priority": "high", "count": 2,
                                 "owner": {"name": "Sam", "team": "red"}, "labels": ["bug"]})


def grammar(tokenizer, mode="any", fmt=GENERIC, tools=TOOLS, **choice):
    return compile_tool_grammar(tokenizer, tools, ToolChoice(mode, **choice), fmt)


def accepts(tool_grammar, text: str, complete: bool = True) -> bool:
    matcher = xgr.GrammarMatcher(tool_grammar.compiled, override_stop_tokens=[END])
    return matcher.accept_string(text) and (matcher.is_completed() or not complete)


@pytest.mark.parametrize("fmt", list(FORMATS.values()), ids=list(FORMATS))
def test_each_format_accepts_its_own_rendering_of_calls(smollm_tokenizer, fmt):
    one, two = render_tool_calls(fmt, [PARIS]), render_tool_calls(fmt, [PARIS, TICKET_CALL])
    assert accepts(grammar(smollm_tokenizer, "any", fmt), one)
    assert accepts(grammar(smollm_tokenizer, "any", fmt), "\n\n" + two)
    assert accepts(grammar(smollm_tokenizer, "auto", fmt), "Let me look. " + two)
    assert not accepts(grammar(smollm_tokenizer, "any", fmt, disable_parallel=True), two, complete=False)
    assert accepts(grammar(smollm_tokenizer, "tool", fmt, name="create_ticket"), render_tool_calls(fmt, [TICKET_CALL]))


def test_any_is_nothing_but_calls_of_the_listed_tools_with_valid_arguments(smollm_tokenizer):
    any_call = grammar(smollm_tokenizer, "any")
    assert not accepts(any_call, "Sure", complete=False)
    assert not accepts(any_call, '<tool_call>\n{"name": "delete_everything"', complete=False)
    bad_inputs = [{"city": "Paris"},                                        # a required field missing
                  {"city": "Paris", "unit": "kelvin"},                      # not in the enum
                  {"city": "Paris", "unit": "celsius", "extra": 1}]         # additionalProperties: false
    for arguments in bad_inputs:
        assert not accepts(any_call, render_tool_call(GENERIC, "get_weather", arguments)), arguments
    ticket = TICKET_CALL[1]
    for change in ({"count": 9}, {"count": 0}, {"count": 2.5}, {"title": "printer"}, {"labels": ["bug"] * 3},
                   {"owner": {"name": "Sam"}}, {"priority": "urgent"}):
        assert not accepts(any_call, render_tool_call(GENERIC, "create_ticket", {**ticket, **change})), change


def test_arguments_are_compact_json_with_no_raw_control_characters(smollm_tokenizer):
    named = grammar(smollm_tokenizer, "tool", name="get_weather")
    assert not accepts(named, render_tool_call(GENERIC, *PARIS).replace(": ", ":"))     # the layout is fixed
    # xgrammar lets a raw tab into a string with maxLength; our grammar closes that gap.
    assert not accepts(named, render_tool_call(GENERIC, "get_weather", {"city": "Par\tis", "unit": "celsius"})
                       .replace("\\t", "\t"), complete=False)


def test_a_named_tool_means_exactly_one_call_of_that_tool(smollm_tokenizer):
    named = grammar(smollm_tokenizer, "tool", name="get_weather")
    assert accepts(named, render_tool_call(GENERIC, *PARIS))
    assert not accepts(named, render_tool_call(GENERIC, *TICKET_CALL))
    assert not accepts(named, render_tool_calls(GENERIC, [PARIS, PARIS]), complete=False)


def test_auto_allows_text_and_constrains_only_the_call(smollm_tokenizer):
    auto = grammar(smollm_tokenizer, "auto")
    assert accepts(auto, "Just text, no call at all.")
    assert accepts(auto, "First " + render_tool_call(GENERIC, *PARIS) + " then more text.")
    assert not accepts(auto, 'Hi <tool_call>\n{"name": "get_weather", "arguments": {"city": 3}', complete=False)
    single = grammar(smollm_tokenizer, "auto", disable_parallel=True)
    assert accepts(single, "Ok. " + render_tool_call(GENERIC, *PARIS))
    assert not accepts(single, "Ok. " + render_tool_call(GENERIC, *PARIS) + " more", complete=False)


def test_none_never_lets_the_trigger_through(smollm_tokenizer):
    none = grammar(smollm_tokenizer, "none")
    assert accepts(none, "I cannot call <tools> or <tool_ call> here.")
    assert not accepts(none, "Now: <tool_call>", complete=False)


def test_mistral_section_in_auto_mode(smollm_tokenizer):
    auto = grammar(smollm_tokenizer, "auto", MISTRAL)
    assert accepts(auto, "Text " + render_tool_calls(MISTRAL, [PARIS, TICKET_CALL]))
    assert not accepts(auto, 'Text [TOOL_CALLS][{"name": "nope"', complete=False)


def test_compiled_grammars_are_cached(smollm_tokenizer):
    tools = [{**WEATHER, "name": "cache_probe"}, TICKET]
    first = compile_tool_grammar(smollm_tokenizer, tools, ToolChoice("any"), GENERIC)
    second = compile_tool_grammar(smollm_tokenizer, tools, ToolChoice("any"), GENERIC)
    # The same compiled object, not a recompilation (bench/tool_grammar.py times the difference).
    assert not first.cache_hit and second.cache_hit and second.compiled is first.compiled
    reworded = [{**tools[0], "description": "Other words."}, TICKET]        # descriptions do not shape it
    assert compile_tool_grammar(smollm_tokenizer, reworded, ToolChoice("any"), GENERIC).cache_hit
    assert not compile_tool_grammar(smollm_tokenizer, tools, ToolChoice("any", disable_parallel=True),
                                    GENERIC).cache_hit
    assert not compile_tool_grammar(smollm_tokenizer, tools, ToolChoice("any"), HERMES).cache_hit


def test_unenforced_schema_keywords_are_reported(smollm_tokenizer):
    loose = {"name": "tagger", "input_schema": {
        "type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                                         "when": {"type": "string", "format": "iri"}},
        "if": {"required": ["tags"]}, "then": {"required": ["when"]}}}
    findings = grammar(smollm_tokenizer, "any", tools=[loose, WEATHER]).unsupported
    assert findings == ("tagger: #: if (not enforced by the grammar)", "tagger: #: then (not enforced by the grammar)",
                        "tagger: #/properties/tags: uniqueItems (not enforced by the grammar)",
                        "tagger: #/properties/when: format 'iri' (not enforced by the grammar)")
    assert grammar(smollm_tokenizer, "any").unsupported == ()


def test_what_cannot_become_a_grammar_is_a_clear_error(smollm_tokenizer):
    with pytest.raises(ToolGrammarError, match="not among the tools"):
        grammar(smollm_tokenizer, "tool", name="missing")
    backreference = {"name": "echo", "input_schema": {"type": "object", "properties": {
        "s": {"type": "string", "pattern": "^(a)\\1$"}}}}
    with pytest.raises(ToolGrammarError, match="could not be compiled"):
        grammar(smollm_tokenizer, "any", tools=[backreference])
    assert compile_tool_grammar(smollm_tokenizer, [], ToolChoice("any"), GENERIC) is None
    with pytest.raises(ValueError):
        ToolChoice("tool")
    with pytest.raises(ValueError):
        ToolChoice("sometimes")


# --- the logits processor, on synthetic logits -------------------------------------------------------------------

def step(processor, generated: list[int], prompt: list[int], width: int = 49152) -> torch.Tensor:
    """One generate() step: the processor sees prompt + generated ids and flat logits; returns the allowed ids."""
    scores = torch.zeros(1, width)
    processor(torch.tensor([prompt + generated]), scores)
    return torch.isfinite(scores[0]).nonzero().flatten()


def test_after_the_calls_only_end_of_turn_is_allowed(smollm_tokenizer):
    processor = make_tool_logits_processor(grammar(smollm_tokenizer, "any", disable_parallel=True), [END])
    call = smollm_tokenizer.encode(render_tool_call(GENERIC, *PARIS))
    prompt = [1, 2, 3]
    assert len(step(processor, [], prompt)) < 50                # only a few tokens can start a call
    for index in range(1, len(call) + 1):
        allowed = step(processor, call[:index], prompt)
        assert index == len(call) or call[index] in allowed
    assert allowed.tolist() == [END]


def test_an_inactive_processor_changes_nothing_until_activated(smollm_tokenizer):
    processor = make_tool_logits_processor(grammar(smollm_tokenizer, "any"), [END], active=False)
    free = smollm_tokenizer.encode("Thinking freely about it.")
    for index in range(len(free)):
        assert len(step(processor, free[:index], [5])) == 49152
    processor.activate()
    assert len(step(processor, free, [5])) < 50                 # the free tokens were never shown to the grammar


def test_start_after_hands_over_after_a_marker(smollm_tokenizer):
    marker = smollm_tokenizer.encode("</think>")
    processor = make_tool_logits_processor(grammar(smollm_tokenizer, "any"), [END],
                                           start_after=generated_ends_with(marker))
    thought = smollm_tokenizer.encode("hmm </thought>")
    assert len(step(processor, thought, marker)) == 49152       # the prompt's own marker does not count
    assert len(step(processor, thought + marker, marker)) < 50
    assert processor.active


def test_padded_logits_columns_are_masked_and_bad_tokens_are_refused(smollm_tokenizer):
    processor = make_tool_logits_processor(grammar(smollm_tokenizer, "any"), [END])
    allowed = step(processor, [], [7], width=49152 + 64)
    assert allowed.max() < 49152
    with pytest.raises(ToolGrammarViolation):
        step(processor, smollm_tokenizer.encode("Plain words"), [7])
