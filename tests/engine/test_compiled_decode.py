"""--compile: the decode step through torch.compile (inductor) gives the same greedy output as eager, alone and
batched, on the tiny random Llama (compiling it takes a while even so; the default model's figures are in the
README)."""
from __future__ import annotations

from engine_helpers import chat, final, text_of

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
