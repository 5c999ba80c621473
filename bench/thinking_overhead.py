"""Per-token cost of the thinking-budget processor (and the rest of the per-request chain) against plain
`model.generate()`, side by side in one run.

Same model (the default), prompt (rendered with thinking on, so the model is inside its thinking section) and greedy
decoding; `min_new_tokens` = `max_new_tokens` so every variant generates exactly the same number of tokens. Variants:

  plain    model.generate()
  budget   + the thinking-budget processor, active all along (the budget is far away: it counts, masks end-of-turn
           and watches for the closing marker on every token, its most expensive state)
  chain    + the engine's detokenizer, output parser and stop-sequence matcher (a stop sequence that never matches),
           fed each token as the step loop feeds them

Rounds rotate the order of the variants, because this machine is noisy; the ratio is taken per round (same minute,
same load) and its median printed, along with the processor's own time per call, measured inside generate().
Run: python bench/thinking_overhead.py [--rounds 7] [--tokens 128] [--threads N]
"""
import argparse
import os
import statistics
import time

import torch
from transformers import LogitsProcessorList

from app.config import Config
from app.engine.model.loader import load_model
from app.engine.text.output_pipeline import OutputPipeline
from app.engine.thinking.parser import OutputParser
from app.engine.model.profiles import detect_profile
from app.engine.model.prompt import prompt_ids, render_prompt
from app.engine.request import GenerationRequest, ThinkingSettings
from app.engine.text.detokenizer import Detokenizer
from app.engine.text.stop_sequences import StopSequenceMatcher
from app.engine.thinking.budget import thinking_budget_processor

QUESTION = "A train leaves at 9:40 and arrives at 13:05. How long is the trip? Explain."


class TimedProcessor:
    """Wraps a logits processor and adds up the time spent in it."""

    def __init__(self, inner):
        self.inner, self.seconds, self.calls = inner, 0.0, 0

    def __call__(self, input_ids, scores):
        started = time.perf_counter()
        scores = self.inner(input_ids, scores)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        return scores


class OutputChain:
    """A logits processor that only reads: it hands each newly generated token to the detokenizer and the output
    pipeline, the per-token work the step loop does after sampling."""

    def __init__(self, detokenizer: Detokenizer, pipeline: OutputPipeline, prompt_length: int):
        self.detokenizer, self.pipeline, self.prompt_length = detokenizer, pipeline, prompt_length

    def __call__(self, input_ids, scores):
        if input_ids.shape[1] > self.prompt_length:
            text = self.detokenizer.push(int(input_ids[0, -1]))
            if text:
                self.pipeline.feed(text)
        return scores


def run(loaded, profile, request, ids, tokens: int, variant: str) -> tuple[float, dict]:
    input_ids = torch.tensor([ids])
    end_of_turn = sorted(loaded.end_of_turn_ids)
    options = {"max_new_tokens": tokens, "min_new_tokens": tokens, "do_sample": False, "eos_token_id": end_of_turn,
               "pad_token_id": loaded.tokenizer.pad_token_id, "attention_mask": torch.ones_like(input_ids)}
    info = {}
    if variant != "plain":
        budget = thinking_budget_processor(loaded.tokenizer, profile, request.thinking, prompt_length=len(ids),
                                           end_of_turn_ids=loaded.end_of_turn_ids)
        timed = TimedProcessor(budget)
        options["logits_processor"] = LogitsProcessorList([timed])
        info = {"processor": timed, "budget": budget}
    if variant == "chain":
        matcher = StopSequenceMatcher(["\n\nHuman:", "never-matches"])
        parser = OutputParser(profile.open_marker, profile.close_marker, starts_in_thinking=True,
                              single_thinking_section=True)
        pipeline = OutputPipeline(parser, matcher, lambda event: None)
        chain = OutputChain(Detokenizer(loaded.tokenizer, loaded.end_of_turn_ids), pipeline, len(ids))
        options["logits_processor"].append(chain)
    started = time.perf_counter()
    output = loaded.model.generate(input_ids, **options)
    seconds = time.perf_counter() - started
    info["generated"] = output[0, len(ids):].tolist()
    return seconds, info


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    loaded = load_model(Config(dtype="float32"))
    profile = detect_profile(loaded.tokenizer)
    request = GenerationRequest(messages=({"role": "user", "content": QUESTION},),
                                thinking=ThinkingSettings(budget_tokens=args.tokens + 1000))
    ids = prompt_ids(loaded.tokenizer, render_prompt(loaded.tokenizer, request, profile))
    print(f"model {loaded.model_id}, profile {profile.name}, prompt {len(ids)} tokens, {args.tokens} new tokens, "
          f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}")

    variants = ["plain", "budget", "chain"]
    for variant in variants:                                    # warm-up, and the outputs must agree
        run(loaded, profile, request, ids, 8, variant)
    per_token = {v: [] for v in variants}
    processor_us, generated = [], {}
    for round_index in range(args.rounds):
        order = variants[round_index % 3:] + variants[:round_index % 3]
        for variant in order:
            seconds, info = run(loaded, profile, request, ids, args.tokens, variant)
            per_token[variant].append(seconds / args.tokens * 1000)
            generated[variant] = info["generated"]
            if "processor" in info:
                processor_us.append(info["processor"].seconds / info["processor"].calls * 1e6)
                phase = info["budget"].phase.value
        print(f"round {round_index + 1}: " + ", ".join(f"{v} {per_token[v][-1]:.2f}" for v in variants)
              + " ms/token")
    assert generated["plain"] == generated["budget"] == generated["chain"], "the variants generated different tokens"

    plain = statistics.median(per_token["plain"])
    print(f"budget processor's phase at the end of a run: {phase} (thinking = active all along)")
    print(f"budget processor's own time: median {statistics.median(processor_us):.0f} us per call "
          f"= {statistics.median(processor_us) / 1000 / plain:.2%} of a plain token")
    for variant in variants:
        ratios = [mine / base for mine, base in zip(per_token[variant], per_token["plain"])]
        print(f"{variant:7s} median {statistics.median(per_token[variant]):6.2f} ms/token   "
              f"ratio to plain: median of rounds {statistics.median(ratios):.3f} "
              f"(min {min(ratios):.3f}, max {max(ratios):.3f})" + ("   target <= 1.03" if variant != "plain" else ""))


if __name__ == "__main__":
    main()
