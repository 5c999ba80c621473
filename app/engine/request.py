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
    """Thinking is on. The thinking section (everything generated up to and including the closing marker) is never
    longer than `budget_tokens`; `min_tokens` (s1's budget forcing, a research extension) keeps the model thinking
    for at least that many tokens by replacing an early close with "Wait"."""
    budget_tokens: int
    min_tokens: int = 0
    # The phrase forced before the closing marker when the budget runs out; None: the server's (Config), "": none.
    transition: str | None = None


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
