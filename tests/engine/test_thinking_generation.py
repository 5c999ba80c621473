"""Thinking through the whole engine on tiny random Llamas: a Qwen3-like model with native `<think>` tokens, and the
plain SmolLM2 template (prompted thinking, markers spelled in text). A random model never closes its thinking, so
every budget here is enforced by force."""
from __future__ import annotations

import pytest
import torch
from engine_helpers import build_tiny_llama_preferring, chat, final, text_of, thinking_of

from app.engine.events import BlockEnd, StopReason, TextDelta, ThinkingDelta
from app.engine.model.profiles import DEFAULT_TRANSITION
from app.engine.request import ThinkingSettings


@pytest.fixture
def native_engine(make_engine, native_thinking_model, native_thinking_tokenizer):
    return make_engine(model=native_thinking_model, tokenizer=native_thinking_tokenizer)


def kinds(events) -> list[str]:
    """Event types with runs of one kind of delta collapsed: ['ThinkingDelta', 'BlockEnd', 'TextDelta', ...]."""
    names = [type(event).__name__ for event in events]
    return [name for i, name in enumerate(names) if i == 0 or name != names[i - 1] or "Delta" not in name]


def thinking_request(budget: int, max_new_tokens: int = 80, transition: str | None = None, **options):
    return chat("Why is the sky blue?", max_new_tokens=max_new_tokens,
                thinking=ThinkingSettings(budget_tokens=budget, transition=transition), **options)


@pytest.mark.parametrize("which", ["native", "prompted"])
def test_thinking_then_answer_within_the_budget(which, native_engine, engine):
    served = native_engine if which == "native" else engine
    assert served.thinking_profile.name == ("qwen3" if which == "native" else "prompted")
    events = list(served.submit(thinking_request(40)).events())
    assert kinds(events) == ["ThinkingDelta", "BlockEnd", "TextDelta", "Finished"]
    finished = final(events)
    # Forced: exactly the budget, the transition ending the thinking text, no marker in any delta.
    assert finished.stats == {"thinking_tokens": 40, "budget_tokens": 40, "budget_forced": True, "min_tokens": 0,
                              "waits_inserted": 0}
    assert thinking_of(events).endswith(DEFAULT_TRANSITION.strip("\n") + "\n")
    assert all("</think>" not in event.text for event in events if isinstance(event, TextDelta | ThinkingDelta))
    assert finished.stop_reason is StopReason.LENGTH and finished.usage.output_tokens == 80   # thinking counts


def test_the_native_single_token_close_is_forced(native_engine, native_thinking_tokenizer, native_thinking_model):
    request = thinking_request(12, max_new_tokens=20, transition="")
    events = list(native_engine.submit(request).events())
    # The same prompt through plain generate() with the same processor chain shows the forced ids themselves.
    ids = torch.tensor([native_thinking_tokenizer(native_engine.render_prompt(request),
                                                  add_special_tokens=False)["input_ids"]])
    free = native_thinking_model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=20,
                                          do_sample=False)[0, ids.shape[1]:].tolist()
    close = native_thinking_tokenizer.convert_tokens_to_ids("</think>")
    assert close not in free                              # left alone, the random model never closes
    assert final(events).stats["thinking_tokens"] == 12 and kinds(events)[:2] == ["ThinkingDelta", "BlockEnd"]
    forced = native_thinking_tokenizer.encode("\n</think>\n\n", add_special_tokens=False)
    assert forced[1] == close
    # Its first 10 tokens were its own; then "\n", "</think>" (tokens 11 and 12), "\n\n".
    assert thinking_of(events) == native_thinking_tokenizer.decode(free[:10], skip_special_tokens=True).lstrip() + "\n"


def test_ending_the_turn_while_thinking_closes_the_section_first(make_engine, native_thinking_tokenizer):
    # A model that always prefers end-of-turn: it may not end inside thinking, so the close is forced, then it ends.
    model = build_tiny_llama_preferring(native_thinking_tokenizer, native_thinking_tokenizer.eos_token_id)
    served = make_engine(model=model, tokenizer=native_thinking_tokenizer)
    finished = final(list(served.submit(thinking_request(50)).events()))
    # "\n" "</think>" "\n\n" then end-of-turn: no transition, the model was done.
    assert finished.stop_reason is StopReason.END and finished.usage.output_tokens == 4
    assert finished.stats["thinking_tokens"] == 2 and not finished.stats["budget_forced"]


def test_max_tokens_inside_thinking_ends_with_length_and_all_thinking_emitted(engine, smollm_tokenizer):
    events = list(engine.submit(thinking_request(100, max_new_tokens=15)).events())
    finished = final(events)
    assert finished.stop_reason is StopReason.LENGTH and finished.usage.output_tokens == 15
    assert kinds(events) == ["ThinkingDelta", "Finished"] and thinking_of(events)
    assert finished.stats["thinking_tokens"] == 15 and not finished.stats["budget_forced"]


def test_stop_sequences_apply_to_the_answer_only(engine):
    free = list(engine.submit(thinking_request(40)).events())
    in_thinking, in_answer = thinking_of(free)[5:12], text_of(free)[3:9]
    assert in_thinking not in text_of(free)
    stopped = list(engine.submit(thinking_request(40, stop_sequences=(in_thinking, in_answer))).events())
    finished = final(stopped)
    assert thinking_of(stopped) == thinking_of(free)                     # thinking is never cut by a stop sequence
    assert finished.stop_reason is StopReason.STOP_SEQUENCE and finished.stop_sequence == in_answer
    assert text_of(stopped) == text_of(free)[:text_of(free).find(in_answer)]


def test_a_budget_below_the_closing_marker_gives_no_thinking(engine):
    request = thinking_request(2, max_new_tokens=10)
    assert engine.render_prompt(request).endswith("<think>\n\n</think>\n\n")
    events = list(engine.submit(request).events())
    assert kinds(events) == ["TextDelta", "Finished"]
    assert final(events).stats == {"thinking_tokens": 0, "budget_tokens": 2, "budget_forced": True,
                                   "min_tokens": 0, "waits_inserted": 0}
    assert final(events).usage.computed_prompt_tokens == engine.count_prompt_tokens(request)


def test_thinking_off_on_a_native_model_is_all_answer_and_no_stats(native_engine):
    events = list(native_engine.submit(chat("Hi", max_new_tokens=10)).events())
    assert kinds(events) == ["TextDelta", "Finished"] and final(events).stats == {}
    assert not any(isinstance(event, BlockEnd) for event in events)


@pytest.mark.parametrize("which", ["native", "prompted"])
def test_prefilled_thinking_is_continued_or_closed_on_every_profile(which, native_engine, engine):
    """The client's thinking text: open, the model goes on thinking after it (within the budget); closed
    (NoThinking), the model answers at once, and the prompt holds the text inside a closed section."""
    served = native_engine if which == "native" else engine
    close = served.thinking_profile.close_marker

    def request(closed: bool):
        return chat("Why is the sky blue?", max_new_tokens=60, thinking=ThinkingSettings(
            budget_tokens=30, prefill="Rayleigh scattering, so", prefill_closed=closed))

    rendered = served.render_prompt(request(False))
    assert rendered.endswith(served.thinking_profile.open_marker + "\nRayleigh scattering, so")
    events = list(served.submit(request(False)).events())
    assert kinds(events) == ["ThinkingDelta", "BlockEnd", "TextDelta", "Finished"]
    assert final(events).stats["thinking_tokens"] == 30 and final(events).stats["thinking_prefill"] == "open"

    rendered = served.render_prompt(request(True))
    assert rendered.endswith("\nRayleigh scattering, so\n" + close + "\n\n")
    events = list(served.submit(request(True)).events())
    assert kinds(events) == ["TextDelta", "Finished"]
    stats = final(events).stats
    assert (stats["thinking_tokens"], stats["budget_forced"], stats["thinking_prefill"]) == (0, False, "closed")
