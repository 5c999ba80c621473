"""One request in the step loop: its prompt, its own processors, sampling settings, detokenizer and output pipeline.

Everything with per-request state is built here, for this row only (the thinking budget, the tool grammar, the
stop matcher, the parsers), so rows never share state. Each step the loop has the row decide its line's constraints
into the step's mask (`constrain_into`), chooses every row's token at once (`choice.choose_tokens`), then hands each
row its token (`accept`); `emit` turns the tokens accepted so far into events, at once or while the next forward
runs.
"""
from __future__ import annotations

import torch

from ..events import Failed, Finished, StopReason, Usage
from ..job import Job
from ..model.loader import LoadedModel
from ..model.profiles import ThinkingProfile
from ..step_mask import StepMask
from ..text.detokenizer import Detokenizer
from ..text.output_pipeline import OutputPipeline
from ..text.stop_sequences import StopSequenceMatcher
from ..thinking.setup import RequestThinking
from ..tools.setup import RequestTools
from . import token_figures


class Row:
    def __init__(self, job: Job, loaded: LoadedModel, profile: ThinkingProfile):
        self.job = job
        request = job.request
        self.prompt = job.prompt
        self.prompt_ids = job.prompt.ids
        self.prompt_length = len(job.prompt.ids)
        # The prompt's vision features, [placeholders, hidden]: computed by the loop when a chunk first needs them
        # (never, when the prefix cache held every image already), dropped once the prompt is read.
        self.image_features: torch.Tensor | None = None
        self._images_before = _running_count(job.prompt.ids, job.prompt.image_token_id) \
            if job.prompt.has_images else None
        # Room left in the context window bounds the output, whatever the request asked for. Thinking tokens are
        # generated tokens: they count against it, and against max_new_tokens, like any other.
        self.max_new_tokens = max(0, min(request.max_new_tokens, loaded.context_window - self.prompt_length))
        plan = job.constraints
        self.thinking = RequestThinking(loaded, request, profile, self.prompt_length, opened=plan.thinking_first)
        self.tools = RequestTools(plan.answer, request.tools, loaded.end_of_turn_ids, self.thinking,
                                  prefill=request.prefill) if plan.answer is not None else None
        # The thinking budget first; the tool grammar after it, acting once the thinking section is closed.
        self.processors = [*self.thinking.processors(), *([self.tools.processor] if self.tools else [])]
        self.sampling = request.sampling
        self._generator: torch.Generator | None = None     # with a seed: this request's own, made on first use
        self.logprobs = request.logprobs                    # token-level figures asked for (`token_figures`)
        self.token_figures: list = []
        self.stop_matcher = StopSequenceMatcher(request.stop_sequences)
        # detokenizer → parser (thinking / answer) → tool-call parser (text / calls) → stop matcher (text) → events
        self.pipeline = OutputPipeline(self.thinking.parser(), self.stop_matcher, job.events.put,
                                       self.tools.parser if self.tools else None)
        self.detokenizer = Detokenizer(loaded.tokenizer, loaded.end_of_turn_ids,
                                       shown_special_ids=self.thinking.shown_special_ids)
        self._end_of_turn_ids = frozenset(loaded.end_of_turn_ids)
        self.generated: list[int] = []               # the tokens chosen so far; `emit` hands them to the detokenizer
        self._emitted = 0                            # ... how many of them it has
        self.ended_turn = False                      # the last one ends the turn
        # The processors read the tokens so far as one [1, length] tensor: a view of this buffer, filled in place.
        self._ids = torch.empty((1, self.prompt_length + self.max_new_tokens), dtype=torch.long)
        self._ids[0, :self.prompt_length] = torch.tensor(self.prompt_ids, dtype=torch.long)
        self.cached_tokens = 0           # prompt tokens whose KV came from the prefix cache
        self.fed = 0                     # tokens whose KV the model holds for this row (prompt, then generated)
        self.next_token: int | None = None          # chosen, not yet fed
        self.ended = False                           # its Finished or Failed event has been sent

    # -- state ------------------------------------------------------------------------------------------------

    def generator(self, device: torch.device) -> torch.Generator:
        """The request's seeded generator, on the device its logits are on."""
        if self._generator is None:
            self._generator = torch.Generator(device=device).manual_seed(self.sampling.seed)
        return self._generator

    @property
    def unemitted(self) -> int:
        """Tokens accepted whose events `emit` has not made yet."""
        return len(self.generated) - self._emitted

    @property
    def cancelled(self) -> bool:
        return self.job.cancelled.is_set()

    @property
    def prefilled(self) -> bool:
        return self.fed >= self.prompt_length

    def fed_cache_key(self) -> list[int]:
        """What this row's KV holds, as the prefix cache keys it: the prompt's cache key, then the tokens generated
        and fed."""
        return (self.prompt.cache_key + self.generated)[:self.fed]

    def prefill_chunk(self, budget: int) -> list[int]:
        return self.prompt_ids[self.fed:self.fed + budget]

    def image_placeholders(self, start: int, end: int) -> tuple[int, int]:
        """(image placeholder tokens before position `start`, placeholders in start..end)."""
        if self._images_before is None:
            return 0, 0
        return self._images_before[start], self._images_before[end] - self._images_before[start]

    def stop_reason(self) -> StopReason | None:
        """Why this row is over, or None while it goes on."""
        if self.stop_matcher.matched is not None:
            return StopReason.STOP_SEQUENCE    # beats end-of-turn: the text after it was never shown
        if self.ended_turn:
            return StopReason.END
        if self.cancelled:
            return StopReason.CANCELLED
        if len(self.generated) >= self.max_new_tokens:
            return StopReason.LENGTH
        return None

    # -- one step ---------------------------------------------------------------------------------------------

    def constrain_into(self, mask: StepMask, at: int, scores: torch.FloatTensor) -> None:
        """The row's processors decide its next token's constraints into line `at` of the step's `mask`, in order
        (scores: [1, vocab], this row's logits, read only)."""
        ids = self._ids[:, :self.prompt_length + len(self.generated)]
        for processor in self.processors:
            processor.constrain_into(mask, at, ids, scores)

    def accept(self, token: int) -> None:
        """The token chosen for this row: the processors see it from the next step; `emit` turns it into text."""
        self._ids[0, self.prompt_length + len(self.generated)] = token
        self.generated.append(token)
        self.job.generated_tokens += 1
        self.ended_turn = token in self._end_of_turn_ids
        self.next_token = token

    def emit(self) -> None:
        """The events of the tokens accepted since the last call: detokenize, parse, match stop sequences, send.
        (The loop may call this while the next forward runs on an accelerator.) A stop sequence shows in
        `stop_reason` only after this."""
        while self._emitted < len(self.generated):
            text = self.detokenizer.push(self.generated[self._emitted])
            self._emitted += 1
            if text:
                self.pipeline.feed(text)

    # -- the end ----------------------------------------------------------------------------------------------

    def finish(self) -> Finished:
        """The closing event, once stop_reason() is set (or the row ends otherwise: then it ran out of room)."""
        self.emit()
        reason = self.stop_reason() or StopReason.LENGTH
        tail = self.detokenizer.finish()
        if tail:
            self.pipeline.feed(tail)
        self.pipeline.finish()
        stats = self.thinking.stats(self.generated)
        if self.logprobs is not None:
            stats["logprobs"] = token_figures.report(self.token_figures, stats.get("thinking_tokens", 0),
                                                     self.detokenizer.tokenizer)
        if self.tools is not None:
            reason = self.tools.stop_reason(reason)
            stats.update(self.tools.stats())
        computed = self.prompt_length - self.cached_tokens
        usage = Usage(0 if self.job.request.marks_cache else computed, len(self.generated),
                      cache_read_input_tokens=self.cached_tokens,
                      cache_creation_input_tokens=computed if self.job.request.marks_cache else 0)
        return Finished(reason, usage, stop_sequence=self.stop_matcher.matched, stats=stats)

    def send_end(self, event: Finished | Failed) -> None:
        """The job's last event: its client may return as soon as it reads it."""
        self.job.events.put(event)
        self.ended = True


def _running_count(ids: list[int], token_id: int) -> list[int]:
    """counts[i]: how many of ids[:i] are `token_id` (len(ids) + 1 entries)."""
    counts = [0]
    for token in ids:
        counts.append(counts[-1] + (token == token_id))
    return counts
