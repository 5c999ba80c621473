"""The step's constraints gathered across rows and applied at once (`StepMask`), and the processors' rollback, on the
real SmolLM2 tokenizer with synthetic logits: no model."""
from __future__ import annotations

import torch
from test_thinking_budget import PROMPT_LENGTH, filler, make
from test_tool_grammar import END, PARIS, grammar

from app.engine.model.profiles import KNOWN_PROFILES
from app.engine.step_mask import StepMask
from app.engine.thinking.budget import Phase
from app.engine.tools.formats import GENERIC, render_tool_call
from app.engine.tools.grammar import make_tool_logits_processor

WIDTH = 49152


def allowed(line: torch.Tensor) -> set[int]:
    return set(torch.isfinite(line.flatten()).nonzero().flatten().tolist())


def test_rows_decided_together_are_each_what_they_would_be_alone(smollm_tokenizer):
    """A grammar at its start, a grammar in mid-call (its only continuation forced), a budget that must close,
    a budget that bans end-of-turn, and a free row: one mask, one apply, each line as its processor alone makes it."""
    call = smollm_tokenizer.encode(render_tool_call(GENERIC, *PARIS))
    prompt = [1] * PROMPT_LENGTH
    closes_at = make(smollm_tokenizer, KNOWN_PROFILES["prompted"], 40)._close_at     # where forcing begins
    rows = [(lambda: make_tool_logits_processor(grammar(smollm_tokenizer, "any"), [END]), []),
            (lambda: make_tool_logits_processor(grammar(smollm_tokenizer, "any"), [END]), call[:3]),
            (lambda: make(smollm_tokenizer, KNOWN_PROFILES["prompted"], 40), [filler(smollm_tokenizer)] * closes_at),
            (lambda: make(smollm_tokenizer, KNOWN_PROFILES["prompted"], 100), [filler(smollm_tokenizer)] * 2),
            (None, [])]
    scores = torch.randn(len(rows), WIDTH, generator=torch.Generator().manual_seed(0))

    alone = scores.clone()
    for index, (build, generated) in enumerate(rows):
        if build is not None:
            replay(build(), prompt, generated)(torch.tensor([prompt + generated]), alone[index:index + 1])

    together, mask = scores.clone(), StepMask(len(rows))
    for index, (build, generated) in enumerate(rows):
        if build is not None:
            ids = torch.tensor([prompt + generated])
            replay(build(), prompt, generated).constrain_into(mask, index, ids, together[index:index + 1])
    assert mask.apply(together) == {}

    assert torch.equal(alone, together)
    assert len(allowed(together[0])) < 50                        # held to the grammar's first tokens
    assert len(allowed(together[1])) == 1                        # mid-call: the one continuation
    assert len(allowed(together[2])) == 1                        # the budget's close, forced
    assert END not in allowed(together[3]) and len(allowed(together[3])) == WIDTH - 1
    assert torch.equal(together[4], scores[4])                   # no processor: untouched


def replay(processor, prompt: list[int], generated: list[int]):
    """The processor as it is after a call at every earlier position (its state follows the calls), the scripted
    model's first choice each time being the token that came next."""
    for length in range(len(generated)):
        scores = torch.zeros(1, WIDTH)
        scores[0, generated[length]] = 5.0
        processor(torch.tensor([prompt + generated[:length]]), scores)
    return processor


def test_a_row_whose_decision_fails_is_dropped_and_the_others_still_apply(smollm_tokenizer):
    mask = StepMask(2)
    mask.force(0, 5)
    call = smollm_tokenizer.encode(render_tool_call(GENERIC, *PARIS))
    processor = replay(make_tool_logits_processor(grammar(smollm_tokenizer, "any"), [END]), [1], call[:3])
    processor._first_token = lambda text: 1 / 0                  # a tokenizer that breaks on jump-forward text
    processor.constrain_into(mask, 1, torch.tensor([[1, *call[:3]]]), torch.zeros(1, WIDTH))
    logits = torch.zeros(2, WIDTH)
    failed = mask.apply(logits)
    assert list(failed) == [1] and isinstance(failed[1], ZeroDivisionError)
    assert allowed(logits[0]) == {5} and len(allowed(logits[1])) == WIDTH


def test_the_tool_grammar_rolls_back_to_any_earlier_point(smollm_tokenizer):
    """A rejected draft: the grammar and its counters are where they were, so it goes on as one that never saw it."""
    call = smollm_tokenizer.encode(render_tool_call(GENERIC, *PARIS))
    prompt = [1, 2, 3]

    def new():
        return make_tool_logits_processor(grammar(smollm_tokenizer, "any", disable_parallel=True), [END])

    processor = replay(new(), prompt, call)                   # calls at every position; they chose the whole call
    processor.rollback(len(call) - 4)                         # keep call[:4]
    fresh = replay(new(), prompt, call[:4])
    assert (processor.tokens_constrained, processor.tokens_forced) == (fresh.tokens_constrained, fresh.tokens_forced)
    for length in range(4, len(call) + 1):
        line, expected = torch.zeros(1, WIDTH), torch.zeros(1, WIDTH)
        processor(torch.tensor([prompt + call[:length]]), line)
        fresh(torch.tensor([prompt + call[:length]]), expected)
        assert torch.equal(line, expected)
    assert allowed(line) == {END}
    # A shorter sequence than the last call saw rolls back by itself.
    line = torch.zeros(1, WIDTH)
    processor(torch.tensor([prompt + call[:2]]), line)
    assert call[2] in allowed(line) and END not in allowed(line)


def test_a_grammar_rolled_back_past_its_start_waits_for_activation_again(smollm_tokenizer):
    processor = make_tool_logits_processor(grammar(smollm_tokenizer, "any"), [END], active=False)
    free = smollm_tokenizer.encode("Thinking.")
    call = smollm_tokenizer.encode(render_tool_call(GENERIC, *PARIS))
    replay(processor, [5], free)
    processor.activate()
    for length in range(len(call[:3]) + 1):                  # the grammar starts after `free`
        processor(torch.tensor([[5, *free, *call[:length]]]), torch.zeros(1, WIDTH))
    processor.rollback(4)                                    # back to its first token: it is where it began
    assert processor.active and processor.tokens_constrained == 0
    processor.rollback(2)                                    # back into the free text
    assert not processor.active
    line = torch.zeros(1, WIDTH)
    processor(torch.tensor([[5, *free[:-2]]]), line)
    assert len(allowed(line)) == WIDTH


def test_the_thinking_budget_rolls_back_to_any_earlier_point(smollm_tokenizer):
    """Drive the budget past its forced close, roll back into the thinking, and it forces the same close again at
    the same place: its state is per position, not cumulative."""
    profile, fill = KNOWN_PROFILES["prompted"], filler(smollm_tokenizer)
    budget = make(smollm_tokenizer, profile, 12)
    prompt = [1] * PROMPT_LENGTH

    def run(generated: list[int], steps: int) -> list[int]:
        for _ in range(steps):
            line = torch.zeros(1, WIDTH)
            line[0, fill] = 5.0
            budget(torch.tensor([prompt + generated]), line)
            generated = generated + [int(line.argmax())]
        return generated

    first = run([], 16)
    assert budget.closed and budget.budget_forced
    budget.rollback(10)                                      # back to 6 tokens: still thinking, nothing forced yet
    assert budget.phase is Phase.THINKING and not budget.budget_forced
    assert run(first[:6], 10) == first and budget.phase is Phase.ANSWER
    # A shorter sequence than the last call saw restores the state at that point by itself.
    again = run(first[:3], 13)
    assert again == first and budget.thinking_tokens == 12


def test_the_batched_sampler_warps_each_row_as_generate_would():
    """temperature, top_k and top_p as per-row tensors give each row what transformers' own warpers give it."""
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    from app.engine.request import Sampling
    from app.engine.scheduler.choice import warp

    settings = [Sampling(temperature=0.7), Sampling(temperature=1.0, top_k=5), Sampling(temperature=1.3, top_p=0.8),
                Sampling(temperature=0.9, top_k=40, top_p=0.5), Sampling(temperature=1.0, top_k=1)]
    scores = torch.randn(len(settings), 1000, generator=torch.Generator().manual_seed(1)) * 3
    scores[1, :10] = 20.0                                    # ties at the k-th score: all of them stay
    warped = warp(settings, scores.clone())
    for index, sampling in enumerate(settings):
        warpers = [TemperatureLogitsWarper(sampling.temperature)]
        if sampling.top_k:
            warpers.append(TopKLogitsWarper(sampling.top_k))
        if sampling.top_p is not None:
            warpers.append(TopPLogitsWarper(sampling.top_p))
        expected = LogitsProcessorList(warpers)(None, scores[index:index + 1].clone())[0]
        assert torch.equal(torch.isfinite(warped[index]), torch.isfinite(expected)), sampling
        kept = torch.isfinite(expected)
        assert torch.allclose(warped[index][kept], expected[kept])
    assert torch.isfinite(warped[1]).sum() == 10 and torch.isfinite(warped[4]).sum() == 1
