"""The default model's weights in each CPU format PyTorch's libraries offer, with and without the compiled decode
step: one-stream decode tok/s through the engine, the weights' bytes, and how far greedy output drifts from fp32.

- `bf16`: every weight in bfloat16 (what `--dtype bfloat16` serves).
- `int8-dynamic`: `torch.ao.quantization.quantize_dynamic`, each Linear's weight int8 per output channel,
  activations quantized per step (fbgemm / oneDNN int8 kernels).
- `int8-weight`: torchao's weight-only int8 (`Int8WeightOnlyConfig`); needs `pip install torchao`, which is not a
  dependency. torchao's CPU int4 is not in its PyPI wheel any more (0.18: no CPU kernels, no opaque int4 config),
  and ATen's own `_weight_int4pack_mm_for_cpu` is slower than a bf16 matmul on this AVX2 CPU, so int4 is left out.

Every format starts from the same fp32 model (the GGUF, de-quantized as the server loads it) and is made in this
process; each one is served by a `LocalEngine` (the KV pool, the step loop) exactly as the server would, with
`--compile` for the compiled column. Rounds alternate between the formats of one column so that machine noise hits
them alike; the medians are printed with their ratio to fp32.

Drift: greedy answers to a fixed set of prompts, each compared with fp32's: how many are identical, and the mean
number of text pieces before the first difference; and, teacher-forced on fp32's own answers (so one early
difference does not decide the rest), the share of positions where the format's greedy choice is fp32's.

  python bench/cpu_formats.py [--formats fp32,bf16,int8-dynamic,int8-weight] [--compile both|off|on]
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import io
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import Config  # noqa: E402
from app.engine.events import Finished, TextDelta  # noqa: E402
from app.engine.model.loader import load_model  # noqa: E402
from app.engine.model.prompt import prompt_ids, render_prompt  # noqa: E402
from app.engine.request import GenerationRequest, Sampling  # noqa: E402
from app.engine.runtime import LocalEngine  # noqa: E402

COUNTING = "Count from 1 to 5000, separated by commas."
WEIGHT_FORMATS = ("fp32", "bf16", "int8-dynamic", "int8-weight")


def convert_weights(model: torch.nn.Module, name: str) -> torch.nn.Module:
    """`model` (float32, on the CPU) in the format `name`; it may be changed in place. Raises ValueError for an
    unknown name, ImportError where a format's library is missing."""
    if name == "fp32":
        return model
    if name == "bf16":
        return model.to(torch.bfloat16)
    if name == "int8-dynamic":
        # Per output channel: one scale per row of each weight (the default, one per tensor, drifts from the first
        # token on).
        return torch.ao.quantization.quantize_dynamic(
            model, {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}, dtype=torch.qint8,
            inplace=True)
    if name == "int8-weight":
        from torchao.quantization import Int8WeightOnlyConfig, quantize_      # pip install torchao to measure it
        quantize_(model, Int8WeightOnlyConfig())
        return model
    raise ValueError(f"unknown weight format {name!r}: one of {', '.join(WEIGHT_FORMATS)}")


DRIFT_PROMPTS = ["What is the capital of France? Answer in one sentence.",
                 "Write a haiku about the sea.",
                 "Explain what a hash table is to a child.",
                 "List three prime numbers and say why they are prime.",
                 "Translate 'good morning, how are you?' into Spanish.",
                 "Write a Python function that reverses a string.",
                 "Why is the sky blue? Two sentences.",
                 "Give me a name for a pet turtle and explain it."]


def request(text: str, tokens: int) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": text},), max_new_tokens=tokens,
                             sampling=Sampling(temperature=0))


def weight_bytes(model) -> int:
    """The size of the model's state dict as torch saves it: packed and quantized weights count as what they are."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def decode_rate(engine: LocalEngine, tokens: int) -> float:
    """One stream's decode tok/s, from its first token to its last."""
    handle = engine.submit(request(COUNTING, tokens))
    handle.next_event(timeout=900)
    started = time.perf_counter()
    finished = [e for e in handle.events(timeout=900) if isinstance(e, Finished)][0]
    return (finished.usage.output_tokens - 1) / (time.perf_counter() - started)


def answers(engine: LocalEngine, tokens: int) -> list[list[str]]:
    """Greedy answers to the drift prompts, as the text pieces each token released."""
    out = []
    for prompt in DRIFT_PROMPTS:
        events = list(engine.submit(request(prompt, tokens)).events(timeout=900))
        out.append([event.text for event in events if isinstance(event, TextDelta)])
    return out


def prompt_of(loaded, text: str) -> list[int]:
    return prompt_ids(loaded.tokenizer, render_prompt(loaded.tokenizer, request(text, 1)))


@torch.inference_mode()
def next_token_choices(loaded, token_lists: list[list[int]]) -> list[torch.Tensor]:
    """The model's greedy choice at every position of each token list (teacher-forced: one forward per list)."""
    return [loaded.model(torch.tensor([ids])).logits[0].float().argmax(-1) for ids in token_lists]


def forced_sequences(loaded, tokens: int) -> list[list[int]]:
    """Each drift prompt followed by fp32's own greedy answer: the positions where the formats are compared."""
    sequences = []
    for prompt in DRIFT_PROMPTS:
        ids = torch.tensor([prompt_of(loaded, prompt)])
        out = loaded.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                                    do_sample=False, pad_token_id=loaded.tokenizer.pad_token_id)
        sequences.append(out[0].tolist())
    return sequences


def agreement(reference: list[torch.Tensor], other: list[torch.Tensor], prompt_lengths: list[int]) -> float:
    """The share of answer positions where the format's greedy choice is fp32's, on fp32's own answers."""
    same = total = 0
    for ref, got, start in zip(reference, other, prompt_lengths):
        same += int((ref[start - 1:] == got[start - 1:]).sum())
        total += ref.numel() - start + 1
    return same / total


def drift(reference: list[list[str]], other: list[list[str]]) -> tuple[int, float]:
    """(answers identical to the reference, mean pieces before the first difference)."""
    same, prefix = 0, []
    for ref, got in zip(reference, other):
        same += ref == got
        common = next((i for i, (a, b) in enumerate(zip(ref, got)) if a != b), min(len(ref), len(got)))
        prefix.append(common)
    return same, statistics.mean(prefix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--formats", default=",".join(WEIGHT_FORMATS))
    parser.add_argument("--compile", choices=("both", "off", "on"), default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--drift-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.formats.split(",")
    base = load_model(Config(device="cpu"))
    forced = forced_sequences(base, args.drift_tokens)
    prompt_lengths = [len(prompt_of(base, prompt)) for prompt in DRIFT_PROMPTS]
    reference_choices = next_token_choices(base, forced)
    agree = {}
    columns = {"off": [False], "on": [True], "both": [False, True]}[args.compile]

    engines, sizes, rates, texts = {}, {}, {}, {}
    for name in list(names):
        try:
            convert_weights(torch.nn.Linear(64, 64), name)
        except ImportError as error:
            print(f"{name}: skipped ({error.name} is not installed)")
            names.remove(name)
    for compiled in columns:
        for name in names:
            loaded = dataclasses.replace(base, model=convert_weights(copy.deepcopy(base.model), name))
            sizes[name] = weight_bytes(loaded.model)
            agree[name] = agreement(reference_choices, next_token_choices(loaded, forced), prompt_lengths)
            started = time.perf_counter()
            engine = LocalEngine(Config(torch_threads=args.threads, compile=compiled, max_batch_size=2),
                                 loader=lambda config, loaded=loaded: loaded)
            engine.load()
            key = (name, compiled)
            print(f"{name:14s} compile={compiled!s:5s} ready in {time.perf_counter() - started:6.1f} s, "
                  f"{sizes[name] / 2**20:7.1f} MiB of weights", flush=True)
            decode_rate(engine, 8)                                   # warm up
            engines[key], rates[key] = engine, []
            texts[key] = answers(engine, args.drift_tokens)
        for _ in range(args.rounds):
            for name in names:
                rates[(name, compiled)].append(decode_rate(engines[(name, compiled)], args.tokens))
        for name in names:
            engines.pop((name, compiled)).close()
        gc.collect()

    reference = texts[("fp32", False)] if ("fp32", False) in texts else next(iter(texts.values()))
    fp32_rate = {compiled: statistics.median(rates[("fp32", compiled)]) for compiled in columns
                 if ("fp32", compiled) in rates}
    print(f"\n1 thread, one stream, {args.tokens} tokens greedy, median of {args.rounds}; drift over "
          f"{len(DRIFT_PROMPTS)} prompts x {args.drift_tokens} tokens against fp32 eager\n")
    print("| weights | compiled | tok/s | vs fp32 | MiB | tok/s x MB per token | same answers | mean common prefix "
          "| top-1 agreement |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, compiled), values in rates.items():
        rate = statistics.median(values)
        same, prefix = drift(reference, texts[(name, compiled)])
        ratio = f"{rate / fp32_rate[compiled]:.2f}" if compiled in fp32_rate else "-"
        print(f"| {name} | {'yes' if compiled else 'no'} | {rate:.1f} | {ratio} | {sizes[name] / 2**20:.0f} | "
              f"{rate * sizes[name] / 1e9:.1f} GB/s | {same}/{len(DRIFT_PROMPTS)} | {prefix:.1f} | "
              f"{agree[name]:.3f} |")


if __name__ == "__main__":
    main()
