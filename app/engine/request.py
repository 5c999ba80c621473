"""What the api layer hands the engine: a chat in Hugging Face's message format plus generation settings."""
from __future__ import annotations

from dataclasses import dataclass, field

from .prepared import RequestImage


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0          # 0 means greedy
    top_p: float | None = None
    top_k: int | None = None
    # Draws from a generator of the request's own, seeded so: the same request samples the same tokens, alone or
    # batched with any others. None: the process's global generator.
    seed: int | None = None


@dataclass(frozen=True)
class ThinkingSettings:
    """Thinking is on. The thinking section (everything generated up to and including the closing marker) is never
    longer than `budget_tokens`; `min_tokens` (s1's budget forcing, a research extension) keeps the model thinking
    for at least that many tokens by replacing an early close with "Wait"."""
    budget_tokens: int
    min_tokens: int = 0
    # The phrase forced before the closing marker when the budget runs out; None: the server's (Config), "": none.
    transition: str | None = None
    # The effort level (`output_config.effort`) that chose budget_tokens, reported with the thinking figures; None
    # when the budget came from elsewhere (the request's budget_tokens, the server's adaptive default).
    effort: str | None = None
    # Prefilled thinking (a research extension): the section starts with this text, written by the client; the
    # model continues it, or, with `prefill_closed`, the section is closed after it and the model answers at once
    # (NoThinking: an empty or token text, closed). The budget counts the tokens the model generates.
    prefill: str = ""
    prefill_closed: bool = False


@dataclass(frozen=True)
class Fork:
    """Where a budget sweep's answer for one budget starts (`Finished.forks`, `GenerationRequest.resume`): the
    trace's first tokens, which a request with that budget would have generated too, and the state of the trace's
    seeded generator before the next draw (None: as seeded). A row resumed from it reads them as its prompt's tail
    (from the prefix cache, which still holds the trace), counts them as generated, and goes on from there exactly
    as that request would."""
    generated: tuple[int, ...]
    generator_state: bytes | None = None
    token_figures: tuple = ()            # the trace's `token_figures` of those tokens, when it recorded them


TOOL_CHOICE_MODES = ("auto", "any", "tool", "none")


@dataclass(frozen=True)
class ToolChoice:
    """How the model may use the request's tools; enforced by the tool grammar (`tool_grammar`).

    auto: it decides; any: at least one call of some tool; tool: one call of `name`; none: no call.
    disable_parallel: at most one call (exactly one with any / tool)."""
    mode: str = "auto"
    name: str | None = None
    disable_parallel: bool = False

    def __post_init__(self):
        if self.mode not in TOOL_CHOICE_MODES:
            raise ValueError(f"tool choice mode must be one of {', '.join(TOOL_CHOICE_MODES)}, not {self.mode!r}")
        if (self.mode == "tool") != (self.name is not None):
            raise ValueError("a tool name goes with mode 'tool', and only with it")


@dataclass(frozen=True)
class GenerationRequest:
    # Hugging Face chat messages: {"role": "system"|"user"|"assistant"|"tool", "content": str}. A system prompt, if
    # any, is the first message. The final assistant prefill is NOT in this list; it is `prefill`. Tool use follows
    # transformers' convention: an assistant turn may carry `tool_calls` ([{"id", "type": "function", "function":
    # {"name", "arguments": dict}}]); each result is a {"role": "tool", "tool_call_id", "name", "content",
    # "is_error"} message. `app.engine.model.prompt` renders them the way the model's tool format expects.
    messages: tuple[dict, ...]
    max_new_tokens: int = 256
    prefill: str = ""
    sampling: Sampling = field(default_factory=Sampling)
    stop_sequences: tuple[str, ...] = ()
    thinking: ThinkingSettings | None = None
    # Tool definitions ({"type": "function", "function": {name, description, parameters}}, or Anthropic's shape).
    tools: tuple[dict, ...] = ()
    tool_choice: ToolChoice = field(default_factory=ToolChoice)    # applies only when there are tools
    # A JSON Schema the text answer must satisfy (Anthropic's output_config.format): the answer, after any thinking,
    # is one JSON value held to it by the grammar. With tools under tool_choice auto the answer is that JSON or
    # calls; under any / tool it is calls only. None: free text.
    output_schema: dict | None = None
    # Citable passages (a document's sentence, a search result's block), numbered from 1 in the prompt: the answer
    # may mark a claim with `[n]` for n up to len(citations), and can write nothing else that looks like a mark
    # (`engine.citations`). Each item is the caller's own record of its passage, opaque here; a CitationMark event
    # names the passage by number. Empty: free text, as without citations.
    citations: tuple = ()
    # A budget sweep's trace (a research extension): for each (budget, max_new_tokens) of a request that differs
    # from this one only in those, `Finished.forks` says where it parts from this one (or that it would not).
    fork_budgets: tuple[tuple[int, int], ...] = ()
    # A budget sweep's answer: resume from a trace's fork instead of starting at the prompt.
    resume: Fork | None = None
    # Token-level figures (a research extension): None, none; k >= 0, each generated token's log-probability and
    # the entropy of its distribution (the model's own, before any constraint), with the k likeliest alternatives.
    logprobs: int | None = None
    # Background work (a Message Batch): admitted only when no interactive request waits, never given the last free
    # row, and not counted against the waiting queue, so interactive requests are neither delayed nor refused by it.
    background: bool = False
    # The images the messages' markers (`prepared.image_marker(image_nonce, i)`) stand for, in index order. Only a
    # vision-language model takes them; for any other, preparing such a request is a PromptError.
    images: tuple[RequestImage, ...] = ()
    image_nonce: str = ""
