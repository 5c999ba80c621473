"""Cost of an answer format (output_config.format): decode speed with the JSON-schema grammar vs a free answer of the
same length, and the grammar's compile time cold vs cached.

The constrained side generates greedily until its JSON is complete (the grammar then allows only end-of-turn); the
free side then generates exactly as many tokens (min_new_tokens = max_new_tokens), same model and prompt. Every
token of the constrained answer is inside the JSON, so the mask is computed, and applied or a literal forced, on
every step: the worst case. Rounds alternate free / constrained so machine noise hits both alike; each figure is
wall ms per generated token (prefill included, the same on both sides). Ratios of medians and of minimums are
printed; on a shared machine the minimum (the round least disturbed) is the steadier one. The processor's own time
per step is measured inside generate() as well, which noise affects much less.
Run: python bench/output_format.py [--rounds 7] [--tokens 96]
"""
import argparse
import statistics
import time

import torch

from app.config import Config
from app.engine.model.loader import load_model
from app.engine.tools.formats import GENERIC
from app.engine.tools.grammar import ToolChoice, ToolGrammarCompiler, make_tool_logits_processor, model_vocab_size
from tool_grammar import Timed  # this folder is on sys.path: the script is run as a file

SCHEMA = {"type": "object", "properties": {
    "title": {"type": "string", "maxLength": 40},
    "genre": {"enum": ["drama", "comedy", "thriller", "documentary"]},
    "year": {"type": "integer", "minimum": 1900, "maximum": 2030},
    "cast": {"type": "array", "minItems": 3, "maxItems": 6, "items": {
        "type": "object", "properties": {"name": {"type": "string", "maxLength": 30},
                                         "role": {"enum": ["lead", "support", "cameo"]}},
        "required": ["name", "role"], "additionalProperties": False}},
    "summary": {"type": "string", "maxLength": 200}},
    "required": ["title", "genre", "year", "cast", "summary"], "additionalProperties": False}
MESSAGES = [{"role": "user", "content": "Describe a film you like as JSON: title, genre, year, cast and a summary."}]


def decode_round(loaded, ids: torch.Tensor, tokens: int, processor=None, exact: bool = True) -> tuple[float, int]:
    """(ms per generated token, tokens generated) for one greedy generation of at most `tokens` tokens (exactly
    that many when `exact`)."""
    end = sorted(loaded.end_of_turn_ids)
    started = time.perf_counter()
    output = loaded.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                                   min_new_tokens=tokens if exact else 0, do_sample=False, temperature=None,
                                   top_p=None, top_k=None, eos_token_id=end, pad_token_id=end[0],
                                   logits_processor=[processor] if processor else [])
    generated = output.shape[1] - ids.shape[1]
    assert not exact or generated == tokens, generated
    return (time.perf_counter() - started) * 1000 / generated, generated


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=160, help="the most the JSON answer may take")
    args = parser.parse_args()

    loaded = load_model(Config(dtype="float32"))
    ids = loaded.tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)["input_ids"]
    compiler = ToolGrammarCompiler(loaded.tokenizer, model_vocab_size(loaded.model))     # nothing cached yet
    grammar = compiler.compile((), ToolChoice(), GENERIC, answer_schema=SCHEMA)
    started = time.perf_counter()
    assert compiler.compile((), ToolChoice(), GENERIC, answer_schema=SCHEMA).cache_hit
    cached_ms = (time.perf_counter() - started) * 1000
    print(f"grammar compile: cold {grammar.compile_seconds * 1000:.1f} ms, cached {cached_ms:.3f} ms")

    decode_round(loaded, ids, 8)                                        # warm-up
    free, constrained, processor_ms = [], [], []
    length = forced = masked = None
    for round_index in range(args.rounds):
        processor = make_tool_logits_processor(grammar, loaded.end_of_turn_ids)
        timed = Timed(processor)
        ms, generated = decode_round(loaded, ids, args.tokens, timed, exact=False)
        constrained.append(ms)
        processor_ms.extend(seconds * 1000 for seconds in timed.seconds)
        # the answer's last token is end-of-turn; the JSON is what comes before it
        length, forced, masked = generated, processor.tokens_forced, processor.tokens_constrained
        free.append(decode_round(loaded, ids, generated)[0])
        print(f"round {round_index + 1}: free {free[-1]:.1f}, json {constrained[-1]:.1f} ms/token ({generated} tokens)")

    base, fastest = statistics.median(free), min(free)
    median, least = statistics.median(constrained), min(constrained)
    steps = sorted(processor_ms)
    print(f"\n{length} tokens, greedy, {args.rounds} rounds: free median {base:.2f}, min {fastest:.2f} ms/token")
    print(f"  json schema: median {median:.2f} ms/token (ratio {median / base:.3f}), min {least:.2f} ms/token "
          f"(ratio {least / fastest:.3f})")
    print(f"  processor per step: median {statistics.median(steps):.3f} ms, p90 {steps[int(len(steps) * 0.9)]:.3f} "
          f"ms, max {steps[-1]:.2f} ms = {statistics.median(steps) / fastest * 100:.2f}% of the fastest free step; "
          f"{masked} of {length} steps masked, {forced} of them forced literals")


if __name__ == "__main__":
    main()
