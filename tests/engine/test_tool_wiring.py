"""Tool use through the whole engine on the tiny random Llama: whatever the random model prefers, the grammar makes
every forced call a valid one, and the parser turns it into call events that end the turn with TOOL_CALL."""
from __future__ import annotations

import pytest
import torch
from engine_helpers import chat, final, thinking_of
from tool_fixtures import SCHEMAS, TICKET, TOOLS, WEATHER, check_argument_streams

from app.engine.errors import ToolGrammarError
from app.engine.events import BlockEnd, StopReason, TextDelta, ThinkingDelta, ToolArgsDelta, ToolCallStart
from app.engine.model.prompt import prompt_ids, render_prompt
from app.engine.request import Sampling, ThinkingSettings, ToolChoice
from app.engine.tools.schema import validate_tool_input


def tool_request(choice: ToolChoice, tools=TOOLS, max_new_tokens: int = 160, **options):
    return chat("Weather in Paris, and a ticket for the printer?", tools=tuple(tools), tool_choice=choice,
                max_new_tokens=max_new_tokens, **options)


def calls(events) -> list[tuple[str, dict]]:
    names = [event.name for event in events if isinstance(event, ToolCallStart)]
    return list(zip(names, check_argument_streams(events)))


@pytest.mark.parametrize("seed", range(3))
def test_a_named_tool_gives_one_valid_call_that_ends_the_turn(engine, seed):
    torch.manual_seed(seed)                        # the worker samples from the global generator
    events = list(engine.submit(tool_request(ToolChoice("tool", name="create_ticket"),
                                             sampling=Sampling(temperature=1.0))).events())
    ((name, tool_input),) = calls(events)
    assert name == "create_ticket" and validate_tool_input(TICKET["input_schema"], tool_input) == []
    assert not any(isinstance(event, TextDelta) for event in events)
    finished = final(events)
    assert finished.stop_reason is StopReason.TOOL_CALL
    assert finished.stats["tool_grammar"]["mode"] == "tool" and "tool_input_errors" not in finished.stats


def test_any_without_parallel_calls_gives_exactly_one_call(engine):
    events = list(engine.submit(tool_request(ToolChoice("any", disable_parallel=True))).events())
    ((name, tool_input),) = calls(events)
    assert validate_tool_input(SCHEMAS[name], tool_input) == []
    assert [type(event) for event in events][-2:] == [BlockEnd, type(final(events))]
    assert final(events).stop_reason is StopReason.TOOL_CALL


def test_thinking_comes_first_and_the_grammar_takes_over_after_it(engine):
    request = tool_request(ToolChoice("tool", name="get_weather"), thinking=ThinkingSettings(budget_tokens=24))
    events = list(engine.submit(request).events())
    first_call = next(i for i, event in enumerate(events) if isinstance(event, ToolCallStart))
    assert all(isinstance(event, ThinkingDelta) for event in events[:first_call - 1])
    assert isinstance(events[first_call - 1], BlockEnd) and thinking_of(events)
    ((name, tool_input),) = calls(events)
    assert name == "get_weather" and validate_tool_input(WEATHER["input_schema"], tool_input) == []
    finished = final(events)
    assert finished.stats["thinking_tokens"] == 24 and finished.stop_reason is StopReason.TOOL_CALL


def test_stop_sequences_never_cut_a_call(engine):
    # '"' and ':' occur in every call's JSON; stop sequences apply to text only.
    events = list(engine.submit(tool_request(ToolChoice("tool", name="get_weather"),
                                             stop_sequences=('"', ":"))).events())
    assert len(calls(events)) == 1 and final(events).stop_reason is StopReason.TOOL_CALL


def test_a_call_cut_off_by_max_tokens_is_closed_and_reported(engine):
    events = list(engine.submit(tool_request(ToolChoice("tool", name="create_ticket"), max_new_tokens=24)).events())
    ((name, tool_input),) = calls(events)          # still a JSON object, as a client's accumulator needs
    finished = final(events)
    assert finished.stop_reason is StopReason.LENGTH
    (report,) = finished.stats["tool_input_errors"]
    assert report["name"] == "create_ticket" and "before the call was complete" in report["errors"][0]
    assert any("required property" in error for error in report["errors"])


def test_counted_tokens_include_the_tools_exactly_as_rendered(engine, smollm_tokenizer):
    with_tools, without = tool_request(ToolChoice()), chat("Weather in Paris, and a ticket for the printer?")
    rendered = render_prompt(smollm_tokenizer, with_tools)
    assert engine.count_prompt_tokens(with_tools) == len(prompt_ids(smollm_tokenizer, rendered))
    assert engine.count_prompt_tokens(with_tools) > engine.count_prompt_tokens(without) + 100


def test_a_schema_the_grammar_cannot_compile_is_refused_before_queueing(engine):
    bad = {"name": "echo", "input_schema": {"type": "object", "properties": {
        "word": {"type": "string", "pattern": "^(a)\\1$"}}}}
    with pytest.raises(ToolGrammarError, match="could not be compiled"):
        engine.submit(tool_request(ToolChoice("any"), tools=[bad]))


def test_tool_choice_none_with_tools_generates_text_only(engine):
    events = list(engine.submit(tool_request(ToolChoice("none"), max_new_tokens=30)).events())
    assert not any(isinstance(event, (ToolCallStart, ToolArgsDelta)) for event in events)
    assert final(events).stop_reason is StopReason.LENGTH
