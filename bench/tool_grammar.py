"""Cost of the tool grammar: decode speed with vs without it, and grammar compile time cold vs cached.

Same model (the default), prompt, greedy decoding and number of new tokens on both sides (min_new_tokens =
max_new_tokens, so neither side stops early). Rounds alternate plain / constrained so machine noise hits both
alike; each figure is wall ms per generated token (prefill included, the same on both sides). The ratios of medians
and of minimums are printed: on a shared machine the minimum (the round least disturbed) is the steadier one.
Two constrained cases:
- `any`: every token is inside a call (parallel calls allowed, so the grammar never runs out of continuations),
  so the mask is computed, applied or a literal forced on every step;
- `auto`: free text with the call trigger armed, the common case; the mask is computed but rarely applied.
The processor's own time per step is measured inside generate() as well, which noise affects much less.
Run: python bench/tool_grammar.py [--rounds 7] [--tokens 64]
"""
import argparse
import statistics
import time

import torch

from app.config import Config
from app.engine.model.loader import load_model
from app.engine.tools.formats import GENERIC
from app.engine.tools.grammar import (ToolChoice, ToolGrammarCompiler, compile_tool_grammar, make_tool_logits_processor,
                                     model_vocab_size)

WEATHER = {"name": "get_weather", "description": "Current weather.", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string", "maxLength": 24},
                                     "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"], "additionalProperties": False}}
NOTE = {"name": "save_note", "description": "Save a note.", "input_schema": {
    "type": "object",
    "properties": {"text": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["text"]}}
TICKET = {"name": "create_ticket", "description": "Open a ticket.", "input_schema": {
    "type": "object", "properties": {
        "title": {"type": "string", "pattern": "^[A-Z][a-z]{2,9}$"},
        "priority": {"type": "string", "enum": ["low", "medium", "high"]},
        "count": {"type": "integer", "minimum": 1, "maximum": 5},
        "owner": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10},
                                                   "team": {"type": "string", "enum": ["red", "blue"]}},
                  "required": ["name", "team"], "additionalProperties": False},
        "labels": {"type": "array", "items": {"type": "string"}, "maxItems": 2}},
    "required": ["title", "priority", "count", "owner"], "additionalProperties": False}}
TOOL_SETS = {
    "1 tool": [WEATHER],
    "3 tools": [WEATHER, NOTE, TICKET],
    "12 tools": [{**tool, "name": f"{tool['name']}_{i}"} for i in range(4) for tool in (WEATHER, NOTE, TICKET)],
}
MESSAGES = [{"role": "system", "content": "You can use the tools get_weather, save_note and create_ticket."},
            {"role": "user", "content": "Note down the weather in every European capital, one note each."}]


class Timed:
    """Wraps a logits processor and records how long each call takes."""

    def __init__(self, processor):
        self.processor, self.seconds = processor, []

    def __call__(self, input_ids, scores):
        started = time.perf_counter()
        scores = self.processor(input_ids, scores)
        self.seconds.append(time.perf_counter() - started)
        return scores


def decode_round(loaded, ids: torch.Tensor, tokens: int, processor=None) -> float:
    """ms per generated token for one greedy generation of exactly `tokens` tokens."""
    end = sorted(loaded.end_of_turn_ids)
    started = time.perf_counter()
    output = loaded.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                                   min_new_tokens=tokens, do_sample=False, temperature=None, top_p=None, top_k=None,
                                   eos_token_id=end, pad_token_id=end[0],
                                   logits_processor=[processor] if processor else [])
    generated = output.shape[1] - ids.shape[1]
    assert generated == tokens, generated
    return (time.perf_counter() - started) * 1000 / generated


def compile_times(loaded) -> None:
    print("grammar compile (tools in generic format, SmolLM2 tokenizer):")
    vocab = model_vocab_size(loaded.model)
    for label, tools in TOOL_SETS.items():
        for choice in (ToolChoice("any"), ToolChoice("auto", disable_parallel=True)):
            compiler = ToolGrammarCompiler(loaded.tokenizer, vocab)      # fresh: nothing cached, xgrammar's included
            cold = compiler.compile(tools, choice, GENERIC)
            started = time.perf_counter()
            warm = compiler.compile(tools, choice, GENERIC)
            cached_ms = (time.perf_counter() - started) * 1000
            assert warm.cache_hit and not cold.cache_hit
            print(f"  {label:9s} {choice.mode:4s}: cold {cold.compile_seconds * 1000:7.2f} ms, "
                  f"cached {cached_ms:6.3f} ms  ({cold.compile_seconds * 1000 / cached_ms:,.0f}x)")
    started = time.perf_counter()
    ToolGrammarCompiler(loaded.tokenizer, vocab)
    print(f"  once per tokenizer: xgrammar TokenizerInfo + compiler {(time.perf_counter() - started) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()

    loaded = load_model(Config(dtype="float32"))
    ids = loaded.tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)["input_ids"]
    tools = TOOL_SETS["3 tools"]
    grammars = {mode: compile_tool_grammar(loaded.tokenizer, tools, ToolChoice(mode), GENERIC,
                                           vocab_size=model_vocab_size(loaded.model)) for mode in ("any", "auto")}
    compile_times(loaded)

    decode_round(loaded, ids, 8)                                        # warm-up
    plain, constrained = [], {mode: [] for mode in grammars}
    processor_ms = {mode: [] for mode in grammars}
    forced = {}
    for round_index in range(args.rounds):
        line = [f"round {round_index + 1}:"]
        plain.append(decode_round(loaded, ids, args.tokens))
        line.append(f"plain {plain[-1]:.1f}")
        for mode, grammar in grammars.items():
            processor = make_tool_logits_processor(grammar, loaded.end_of_turn_ids)
            timed = Timed(processor)
            constrained[mode].append(decode_round(loaded, ids, args.tokens, timed))
            processor_ms[mode].extend(seconds * 1000 for seconds in timed.seconds)
            forced[mode] = (processor.tokens_forced, processor.tokens_constrained)
            line.append(f"{mode} {constrained[mode][-1]:.1f}")
        print(" ".join(line) + " ms/token")

    base, fastest = statistics.median(plain), min(plain)
    print(f"\n{args.tokens} tokens, greedy, {args.rounds} rounds: plain median {base:.2f}, min {fastest:.2f} ms/token")
    for mode in grammars:
        median, least = statistics.median(constrained[mode]), min(constrained[mode])
        steps = sorted(processor_ms[mode])
        print(f"  {mode:4s}: median {median:.2f} ms/token (ratio {median / base:.3f}), min {least:.2f} ms/token "
              f"(ratio {least / fastest:.3f}); target <= 1.03")
        print(f"        processor per step: median {statistics.median(steps):.3f} ms, p90 "
              f"{steps[int(len(steps) * 0.9)]:.3f} ms, max {steps[-1]:.2f} ms = "
              f"{statistics.median(steps) / fastest * 100:.2f}% of the fastest plain step; last round: "
              f"{forced[mode][1]} of {args.tokens} steps masked, {forced[mode][0]} of them forced literals")


if __name__ == "__main__":
    main()
