"""--compile: the decode step through torch.compile (inductor) gives the same greedy output as eager, alone and
batched, on the tiny random Llama (compiling it takes a while even so; the default model's figures are in the
README). On CUDA it is replayed as CUDA graphs over batches padded to a power of two: the padding and that
configuration are checked here on the CPU, the graphs themselves only where a GPU is."""
from __future__ import annotations

import pytest
import torch
from engine_helpers import build_tiny_llama, chat, final, text_of

from app.engine.model.loader import wrap_loaded_model
from app.engine.scheduler.forward import PoolRunner

REQUESTS = [chat("Hi!", max_new_tokens=30), chat("What is the capital of France? " * 4, max_new_tokens=300),
            chat("Tell me a story.", max_new_tokens=12)]


def answers(engine) -> list[tuple[str, int]]:
    handles = [engine.submit(request) for request in REQUESTS]
    return [(text_of(events), final(events).usage.output_tokens)
            for events in (list(handle.events(timeout=600)) for handle in handles)]


def test_compiled_decode_gives_the_eager_output(make_engine):
    eager = answers(make_engine(no_prefix_cache=True))
    compiled_engine = make_engine(no_prefix_cache=True, compile=True)
    assert answers(compiled_engine) == eager


# -- CUDA graphs: padded batches, and the graph configuration -------------------------------------------------------

PROMPTS = [list(range(100, 105)), list(range(200, 209)), list(range(300, 303))]


def pool_runner(model, **options) -> PoolRunner:
    return PoolRunner(model, torch.device("cpu"), slot_tokens=256, budget_bytes=1 << 30, max_slots=8, **options)


def greedy_steps(runner: PoolRunner, steps: int) -> tuple[list[list[int]], torch.Tensor]:
    """PROMPTS read into slots 0..2, then `steps` greedy decode steps of the three rows together: each step's
    tokens, and its logits ([steps, rows, vocab])."""
    tokens, logits = [], []
    with torch.inference_mode():
        for slot, prompt in enumerate(PROMPTS):
            runner.prefill(slot, prompt, 0)
        chosen, positions = [prompt[-1] for prompt in PROMPTS], [len(prompt) for prompt in PROMPTS]
        for _ in range(steps):
            step = runner.decode(chosen, positions)
            chosen, positions = step.argmax(-1).tolist(), [p + 1 for p in positions]
            tokens.append(chosen)
            logits.append(step)
    return tokens, torch.stack(logits)


def test_a_padded_decode_step_gives_each_row_its_unpadded_result(tiny_model):
    plain_tokens, plain_logits = greedy_steps(pool_runner(tiny_model), 40)
    padded = pool_runner(tiny_model, pad_batches=True)
    assert padded._padded_rows(3) == 4 and padded._padded_rows(5) == 8 and padded._padded_rows(1) == 1
    padded_tokens, padded_logits = greedy_steps(padded, 40)
    assert padded_tokens == plain_tokens
    torch.testing.assert_close(padded_logits, plain_logits, rtol=1e-5, atol=1e-5)


def test_padding_rows_write_only_the_scratch_column(tiny_model):
    """The padding row of a 3-row step reads slot 3, which may hold a row still reading its prompt, or a cached
    prefix: what it holds is left as it was."""
    runner = pool_runner(tiny_model, pad_batches=True)
    held = list(range(400, 420))
    with torch.inference_mode():
        runner.prefill(3, held, 0)
    before = [layer[3, :, :len(held)].clone() for layer in runner.pool.keys + runner.pool.values]
    greedy_steps(runner, 10)
    after = [layer[3, :, :len(held)] for layer in runner.pool.keys + runner.pool.values]
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_the_cuda_graph_configuration_gives_the_eager_output(tiny_model):
    """What --compile does on CUDA (padded batches, the pool at a static address, mode="reduce-overhead", logits
    copied out of the graph's buffers), run here on a CPU, where inductor skips the graphs themselves."""
    eager_tokens, _ = greedy_steps(pool_runner(tiny_model), 30)
    graphs = pool_runner(tiny_model, compile_decode=True, cuda_graphs=True)
    assert graphs.cuda_graphs and graphs.pad_batches
    assert greedy_steps(graphs, 30)[0] == eager_tokens


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_decode_on_cuda_replays_cuda_graphs_with_the_eager_output(make_engine, smollm_tokenizer):
    model = build_tiny_llama(smollm_tokenizer).to("cuda")
    loaded = wrap_loaded_model(model, smollm_tokenizer, "tiny-llama", device=torch.device("cuda"))
    eager = answers(make_engine(loaded=loaded, no_prefix_cache=True))
    compiled = make_engine(loaded=loaded, no_prefix_cache=True, compile=True)
    assert compiled._scheduler.runner.cuda_graphs
    assert answers(compiled) == eager
