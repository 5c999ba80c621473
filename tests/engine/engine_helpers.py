"""Small builders shared by the engine tests."""
from __future__ import annotations

import copy

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from app.engine.events import TERMINAL_EVENTS, Event, Finished, TextDelta, ThinkingDelta
from app.engine.request import GenerationRequest, Sampling

TINY_SEED = 0

# The parts of Qwen3's chat template that matter here: ChatML turns, `enable_thinking` (False: an empty closed
# section), and `reasoning_content` rendered for an assistant turn that carries it.
QWEN3_LIKE_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' and message.reasoning_content is defined and message.reasoning_content %}"
    "{{- '<|im_start|>assistant\n<think>\n' + message.reasoning_content.strip('\n') + '\n</think>\n\n'"
    " + (message.content or '') + '<|im_end|>\n' }}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\n' + (message.content or '') + '<|im_end|>\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\n\n</think>\n\n' }}{%- endif %}"
    "{%- endif %}")

# The parts of Qwen2.5's chat template that matter for tools: the tool list in the system turn, assistant
# `tool_calls` written as Hermes <tool_call> blocks, `role: "tool"` results as <tool_response> in a user turn.
HERMES_LIKE_TEMPLATE = (
    "{%- if tools %}{{- '<|im_start|>system\n' + (messages[0].content if messages[0].role == 'system' else '')"
    " + '\n\n# Tools\n<tools>' }}{%- for tool in tools %}{{- '\n' + (tool | tojson) }}{%- endfor %}"
    "{{- '\n</tools>\nCall a function with <tool_call>{\"name\": ..., \"arguments\": ...}</tool_call>'"
    " + '<|im_end|>\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'system' and tools %}"
    "{%- elif message.role == 'tool' %}"
    "{{- '<|im_start|>user\n<tool_response>\n' + message.content + '\n</tool_response><|im_end|>\n' }}"
    "{%- elif message.role == 'assistant' %}{{- '<|im_start|>assistant\n' + (message.content or '') }}"
    "{%- for call in message.tool_calls or [] %}{{- '\n<tool_call>\n{\"name\": \"' + call.function.name"
    " + '\", \"arguments\": ' + (call.function.arguments | tojson) + '}\n</tool_call>' }}{%- endfor %}"
    "{{- '<|im_end|>\n' }}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}{%- endif %}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}")

# DeepSeek-R1's shape: the generation prompt itself opens the thinking section.
DEEPSEEK_R1_LIKE_TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n<think>\n' }}{%- endif %}")


def chat(text: str = "Tell me a story.", **options) -> GenerationRequest:
    """A one-message request, greedy unless `sampling` is given."""
    options.setdefault("sampling", Sampling(temperature=0))
    return GenerationRequest(messages=({"role": "user", "content": text},), **options)


def text_of(events: list[Event]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def thinking_of(events: list[Event]) -> str:
    return "".join(event.text for event in events if isinstance(event, ThinkingDelta))


def final(events: list[Event]):
    assert isinstance(events[-1], TERMINAL_EVENTS), events[-1]
    return events[-1]


def build_tiny_llama(tokenizer, seed: int = TINY_SEED) -> LlamaForCausalLM:
    """2 layers, hidden size 64: a few milliseconds per token on CPU, same code path as a real Llama."""
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    return LlamaForCausalLM(config).eval()


def with_template(tokenizer, template):
    """A copy of `tokenizer` with another chat template; the original (a session fixture) keeps its own."""
    clone = copy.copy(tokenizer)
    clone.chat_template = template
    return clone


def build_tiny_llama_preferring(tokenizer, token_id: int) -> LlamaForCausalLM:
    """A tiny Llama whose head always picks `token_id`: to drive the engine down one path on purpose."""
    model = build_tiny_llama(tokenizer)
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.bias = torch.nn.Parameter(torch.zeros(model.config.vocab_size))
        model.lm_head.bias[token_id] = 10.0
    return model


def greedy_ids(loaded, text: str = "Tell me a story.", max_new_tokens: int = 16) -> list[int]:
    """What plain `generate()` makes of `text` (no chat template), greedy: the reference for a loaded model."""
    ids = loaded.tokenizer(text, return_tensors="pt")["input_ids"].to(loaded.device)
    out = loaded.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                do_sample=False, pad_token_id=loaded.tokenizer.pad_token_id)
    return out[0, ids.shape[1]:].tolist()


def answers(engine, requests, together: bool) -> list[tuple]:
    """Each request's streamed text, stop reason and output tokens; all submitted at once, or one after another."""
    if together:
        handles = [engine.submit(request) for request in requests]
        runs = [list(handle.events(timeout=120)) for handle in handles]
    else:
        runs = [list(engine.submit(request).events(timeout=120)) for request in requests]
    results = []
    for events in runs:
        last = events[-1]
        assert isinstance(last, Finished), last
        results.append((text_of(events), last.stop_reason, last.usage.output_tokens))
    return results
