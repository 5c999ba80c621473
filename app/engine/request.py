"""What the api layer hands the engine: a chat in Hugging Face's message format plus generation settings."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0          # 0 means greedy
    top_p: float | None = None
    top_k: int | None = None


@dataclass(frozen=True)
class ThinkingSettings:
    budget_tokens: int
    min_tokens: int = 0


@dataclass(frozen=True)
class GenerationRequest:
    # Hugging Face chat messages: {"role": "system"|"user"|"assistant", "content": str}. A system prompt, if any,
    # is the first message. The final assistant prefill is NOT in this list; it is `prefill`.
    messages: tuple[dict, ...]
    max_new_tokens: int = 256
    prefill: str = ""
    sampling: Sampling = field(default_factory=Sampling)
    stop_sequences: tuple[str, ...] = ()
    thinking: ThinkingSettings | None = None
    tools: tuple[dict, ...] = ()       # JSON-schema tool definitions, for templates that accept tools=
