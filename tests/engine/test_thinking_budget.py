"""The thinking-budget processor on synthetic logits: no model, a scripted "model" that prefers one token per step,
greedy decoding. Run with SmolLM2's tokenizer (prompted: "</think>" is 3 plain tokens) and with the native one
(`</think>` is one special token)."""
from __future__ import annotations

import contextlib

import pytest
import torch

from app.engine.model.profiles import KNOWN_PROFILES
from app.engine.request import ThinkingSettings
from app.engine.thinking.budget import Phase, thinking_budget_processor
from app.engine.thinking.close import WAIT_CONTINUATION, closing_sequences, minimum_thinking_budget

PROMPT_LENGTH = 7


@pytest.fixture(params=["prompted", "native"])
def setup(request, smollm_tokenizer, native_thinking_tokenizer):
    """(tokenizer, profile) for each kind of marker."""
    if request.param == "prompted":
        return smollm_tokenizer, KNOWN_PROFILES["prompted"]
    return native_thinking_tokenizer, KNOWN_PROFILES["qwen3"]


def make(tokenizer, profile, budget, min_tokens=0, transition=None):
    return thinking_budget_processor(tokenizer, profile, ThinkingSettings(budget, min_tokens, transition),
                                     prompt_length=PROMPT_LENGTH, end_of_turn_ids={tokenizer.eos_token_id})


def ids_of(tokenizer, text):
    return tokenizer.encode(text, add_special_tokens=False)


def filler(tokenizer):
    return ids_of(tokenizer, " idea")[0]


@contextlib.contextmanager
def one_thread():
    """Vocabulary-sized tensor ops run on torch's thread pool, which on a busy 2-core machine waits a whole
    scheduler slice for its second thread; these loops are tiny, so run them on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def decode_loop(processor, tokenizer, choose, steps):
    """Greedy decoding for `steps` tokens; choose(generated_ids) is the scripted model's favourite next token."""
    ids = [1] * PROMPT_LENGTH
    with one_thread():
        for _ in range(steps):
            scores = torch.zeros(1, len(tokenizer))
            scores[0, choose(ids[PROMPT_LENGTH:])] = 10.0
            ids.append(int(processor(torch.tensor([ids]), scores)[0].argmax()))
    generated = ids[PROMPT_LENGTH:]
    processor.finish(generated)
    return generated


def section_length(tokenizer, generated, close="</think>"):
    """Tokens up to and including the one that completes the closing marker (None if it never closes)."""
    for length in range(1, len(generated) + 1):
        if close in tokenizer.decode(generated[:length], skip_special_tokens=False):
            return length
    return None


def closing_to(tokenizer, close_at: int, marker: list[int], fill: int):
    """A model that thinks until `close_at`, then writes the closing marker itself, then answers."""
    def choose(generated):
        for done in range(len(marker) - 1, 0, -1):          # finish a marker it has started
            if generated[-done:] == marker[:done]:
                return marker[done]
        return marker[0] if len(generated) >= close_at and marker[0] not in generated else fill
    return choose


def test_the_forced_sequence_is_exactly_the_closing_ids_and_the_count_is_exact(setup):
    tokenizer, profile = setup
    closing = closing_sequences(tokenizer, profile.close_marker, profile.transition)[0]
    fill = filler(tokenizer)
    processor = make(tokenizer, profile, 50)
    generated = decode_loop(processor, tokenizer, lambda generated: fill, 70)
    start = 50 - closing.thinking_length
    assert generated[:start] == [fill] * start
    assert tuple(generated[start:start + len(closing.token_ids)]) == closing.token_ids
    assert tokenizer.decode(generated[start:], skip_special_tokens=False).startswith(profile.transition + "</think>")
    assert processor.thinking_tokens == section_length(tokenizer, generated) == 50
    assert processor.budget_forced and not processor.closed_naturally and processor.phase is Phase.ANSWER
    assert generated[start + len(closing.token_ids):] == [fill] * (70 - start - len(closing.token_ids))


@pytest.mark.parametrize("pick", ["1", "2", "L-1", "L", "L+1", "50", "minimum", "minimum+1"])
def test_the_thinking_section_never_exceeds_the_budget(setup, pick):
    tokenizer, profile = setup
    length = len(closing_sequences(tokenizer, profile.close_marker, profile.transition)[0].token_ids)
    minimum = minimum_thinking_budget(tokenizer, profile.close_marker)
    budget = {"1": 1, "2": 2, "L-1": length - 1, "L": length, "L+1": length + 1, "50": 50, "minimum": minimum,
              "minimum+1": minimum + 1}[pick]
    processor = make(tokenizer, profile, budget)
    if budget < minimum:
        assert processor is None        # the prompt closes the section instead: see test_thinking_prompt
        return
    generated = decode_loop(processor, tokenizer, lambda generated: filler(tokenizer), budget + 30)
    assert section_length(tokenizer, generated) == processor.thinking_tokens <= budget
    assert tokenizer.decode(generated, skip_special_tokens=False).count("</think>") == 1


def test_nothing_is_forced_when_the_model_closes_by_itself(setup):
    tokenizer, profile = setup
    marker, fill, eos = ids_of(tokenizer, "</think>"), filler(tokenizer), tokenizer.eos_token_id
    processor = make(tokenizer, profile, 50)
    think_then_close = closing_to(tokenizer, 5, marker, fill)

    def model(generated):               # ... then answers a little and ends its turn
        return eos if len(generated) == 5 + len(marker) + 3 else think_then_close(generated)

    generated = decode_loop(processor, tokenizer, model, 5 + len(marker) + 4)
    assert generated == [fill] * 5 + marker + [fill] * 3 + [eos]     # exactly what the model wanted
    assert processor.closed_naturally and not processor.budget_forced
    assert processor.thinking_tokens == 5 + len(marker)
    # Closed: it hands the scores back untouched, whatever they are.
    scores = torch.randn(1, len(tokenizer))
    before = scores.clone()
    assert processor(torch.tensor([[1] * PROMPT_LENGTH + generated]), scores) is scores
    assert torch.equal(scores, before)


def test_a_close_completed_by_the_last_token_is_counted(setup):
    tokenizer, profile = setup
    marker = ids_of(tokenizer, "</think>")
    processor = make(tokenizer, profile, 50)
    decode_loop(processor, tokenizer, closing_to(tokenizer, 4, marker, filler(tokenizer)), 4 + len(marker))
    assert processor.closed_naturally and processor.thinking_tokens == 4 + len(marker)


def test_ending_the_turn_inside_thinking_forces_the_close_instead(setup):
    tokenizer, profile = setup
    eos, fill = tokenizer.eos_token_id, filler(tokenizer)
    plain = closing_sequences(tokenizer, profile.close_marker, "")[0]          # "\n</think>\n\n", no transition
    processor = make(tokenizer, profile, 50)
    generated = decode_loop(processor, tokenizer, lambda generated: eos if len(generated) >= 4 else fill, 12)
    assert tuple(generated[4:4 + len(plain.token_ids)]) == plain.token_ids
    assert eos not in generated[:4 + len(plain.token_ids)]
    assert generated[4 + len(plain.token_ids)] == eos                          # and then it ends its turn
    assert processor.thinking_tokens == section_length(tokenizer, generated) == 4 + plain.thinking_length
    assert not processor.budget_forced and not processor.closed_naturally


def test_min_tokens_inserts_wait_until_enough_thinking_then_lets_the_model_close(setup):
    tokenizer, profile = setup
    marker, fill = ids_of(tokenizer, "</think>"), filler(tokenizer)
    processor = make(tokenizer, profile, 100, min_tokens=20)
    generated = decode_loop(processor, tokenizer, closing_to(tokenizer, 3, marker, fill), 60)
    thinking = tokenizer.decode(generated[:processor.thinking_tokens], skip_special_tokens=False)
    assert processor.waits_inserted >= 1 and thinking.count(WAIT_CONTINUATION) == processor.waits_inserted
    assert processor.closed_naturally and not processor.budget_forced
    assert 20 <= processor.thinking_tokens == section_length(tokenizer, generated) <= 20 + len(marker) + 1
    assert generated[processor.thinking_tokens:] == [fill] * (60 - processor.thinking_tokens)   # left alone after


def test_min_tokens_masks_close_and_end_of_turn_even_when_they_are_not_the_first_choice(setup):
    tokenizer, profile = setup
    eos, start = tokenizer.eos_token_id, ids_of(tokenizer, "</think>")[0]
    processor = make(tokenizer, profile, 100, min_tokens=20)
    scores = torch.zeros(1, len(tokenizer))
    scores[0, filler(tokenizer)], scores[0, eos], scores[0, start] = 3.0, 2.0, 1.0
    out = processor(torch.tensor([[1] * (PROMPT_LENGTH + 5)]), scores.clone())
    assert out[0, eos] == out[0, start] == float("-inf") and out[0, filler(tokenizer)] == 3.0
    # Past the minimum only end-of-turn stays masked: the model may close, but not end its turn, while thinking.
    out = processor(torch.tensor([[1] * (PROMPT_LENGTH + 30)]), scores.clone())
    assert out[0, eos] == float("-inf") and out[0, start] == 1.0


def test_min_tokens_never_pushes_past_the_budget(setup):
    tokenizer, profile = setup
    marker = ids_of(tokenizer, "</think>")
    closing = closing_sequences(tokenizer, profile.close_marker, profile.transition)[0]
    processor = make(tokenizer, profile, 60, min_tokens=1000)
    generated = decode_loop(processor, tokenizer, closing_to(tokenizer, 0, marker, filler(tokenizer)), 80)
    # The minimum is capped where a last "Wait" still leaves room for the forced close; after that the model may
    # close, and the section stays within the budget.
    capped_min = 60 - closing.thinking_length - len(ids_of(tokenizer, WAIT_CONTINUATION)) + 1
    assert capped_min <= processor.thinking_tokens == section_length(tokenizer, generated) <= 60
    assert processor.waits_inserted >= 1


def test_a_forced_token_wins_even_if_an_earlier_processor_masked_it(setup):
    tokenizer, profile = setup
    closing = closing_sequences(tokenizer, profile.close_marker, "")[0]
    processor = make(tokenizer, profile, closing.thinking_length, transition="")   # forcing starts at once
    scores = torch.full((1, len(tokenizer)), float("-inf"))
    scores[0, filler(tokenizer)] = 5.0
    out = processor(torch.tensor([[1] * PROMPT_LENGTH]), scores)
    assert int(out[0].argmax()) == closing.token_ids[0] and out[0, closing.token_ids[0]] == 0.0
    assert torch.isinf(out).sum() == len(tokenizer) - 1


def test_running_out_of_tokens_while_forcing_counts_what_was_generated(setup):
    tokenizer, profile = setup
    processor = make(tokenizer, profile, 50)
    closing = closing_sequences(tokenizer, profile.close_marker, profile.transition)[0]
    decode_loop(processor, tokenizer, lambda generated: filler(tokenizer), 50 - closing.thinking_length + 2)
    assert processor.phase is Phase.FORCING_CLOSE and processor.thinking_tokens == 50 - closing.thinking_length + 2


def test_stats_are_the_research_figures(smollm_tokenizer):
    processor = make(smollm_tokenizer, KNOWN_PROFILES["prompted"], 40, min_tokens=5)
    decode_loop(processor, smollm_tokenizer, lambda generated: filler(smollm_tokenizer), 45)
    assert processor.stats == {"thinking_tokens": 40, "budget_tokens": 40, "budget_forced": True, "min_tokens": 5,
                               "waits_inserted": 0}


def test_one_sequence_at_a_time(smollm_tokenizer):
    processor = make(smollm_tokenizer, KNOWN_PROFILES["prompted"], 40)
    with pytest.raises(ValueError, match="one sequence"):
        processor(torch.ones(2, PROMPT_LENGTH + 1, dtype=torch.long), torch.zeros(2, len(smollm_tokenizer)))


@pytest.mark.parametrize("closes", ["by_itself", "by_force"])
def test_the_section_is_closed_from_the_call_for_the_first_answer_token(setup, closes):
    """`closed` turns true inside the call that chooses the first answer token, so a grammar after the budget in
    the row starts with exactly that token."""
    tokenizer, profile = setup
    marker, fill = ids_of(tokenizer, "</think>"), filler(tokenizer)
    closing = closing_sequences(tokenizer, profile.close_marker, profile.transition)[0]
    calls = []
    processor = make(tokenizer, profile, 40)
    model = closing_to(tokenizer, 3, marker, fill) if closes == "by_itself" else (lambda generated: fill)

    def watched(generated):             # called just before the processor, for the token at len(generated)
        if processor.closed and not calls:
            calls.append(len(generated) - 1)       # it closed in the call before this one, for that token
        return model(generated)

    decode_loop(processor, tokenizer, watched, 60)
    first_answer_token = (3 + len(marker) if closes == "by_itself"
                          else 40 - closing.thinking_length + len(closing.token_ids))
    assert calls == [first_answer_token]
