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
        self.prompt_length = len(job.prompt.ids)
        # A budget sweep's fork resumes a trace: the trace's first tokens are generated already (processors,
        # usage and text count them so), but the model reads them as the tail of the prompt, from the prefix cache.
        resumed = list(request.resume.generated) if request.resume is not None else []
        self.feed_ids = job.prompt.ids + resumed      # what prefill feeds
        self.feed_key = job.prompt.cache_key + resumed
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
        self._resumed_state = request.resume.generator_state if request.resume is not None else None
        # A sweep's trace keeps its seeded generator's state where forks may start (`sweep`).
        self._fork_closes = self.thinking.fork_closes(request.fork_budgets) if request.fork_budgets else {}
        self._fork_positions = {position for close_at, _, max_new in self._fork_closes.values()
                                for position in (close_at, max_new - 1)} \
            if self.sampling.seed is not None and self.sampling.temperature > 0 else set()
        self._generator_states: dict[int, bytes | None] = {}
        self.logprobs = request.logprobs                    # token-level figures asked for (`token_figures`)
        self.token_figures: list = list(request.resume.token_figures) if request.resume is not None else []
        self.stop_matcher = StopSequenceMatcher(request.stop_sequences)
        # detokenizer → parser (thinking / answer) → tool-call parser (text / calls) → stop matcher (text) → events
        self.pipeline = OutputPipeline(self.thinking.parser(), self.stop_matcher, job.events.put,
                                       self.tools.parser if self.tools else None)
        self.detokenizer = Detokenizer(loaded.tokenizer, loaded.end_of_turn_ids,
                                       shown_special_ids=self.thinking.shown_special_ids)
        self._end_of_turn_ids = frozenset(loaded.end_of_turn_ids)
        self.generated: list[int] = resumed          # the tokens chosen so far; `emit` hands them to the detokenizer
        self._emitted = 0                            # ... how many of them it has
        job.generated_tokens = len(resumed)
        self.ended_turn = False                      # the last one ends the turn
        # The processors read the tokens so far as one [1, length] tensor: a view of this buffer, filled in place.
        self._ids = torch.empty((1, self.prompt_length + self.max_new_tokens), dtype=torch.long)
        self._ids[0, :len(self.feed_ids)] = torch.tensor(self.feed_ids, dtype=torch.long)
        self.cached_tokens = 0           # prompt tokens whose KV came from the prefix cache
        self.fed = 0                     # tokens whose KV the model holds for this row (prompt, then generated)
        self.next_token: int | None = None          # chosen, not yet fed
        self.ended = False                           # its Finished or Failed event has been sent

    # -- state ------------------------------------------------------------------------------------------------

    def generator(self, device: torch.device) -> torch.Generator:
        """The request's seeded generator, on the device its logits are on."""
        if self._generator is None:
            self._generator = torch.Generator(device=device).manual_seed(self.sampling.seed)
            if self._resumed_state is not None:
                self._generator.set_state(torch.frombuffer(bytearray(self._resumed_state), dtype=torch.uint8))
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
        return self.fed >= len(self.feed_ids)

    def fed_cache_key(self) -> list[int]:
        """What this row's KV holds, as the prefix cache keys it: the prompt's cache key, then the tokens generated
        and fed."""
        return (self.prompt.cache_key + self.generated)[:self.fed]

    def prefill_chunk(self, budget: int) -> list[int]:
        return self.feed_ids[self.fed:self.fed + budget]

    def image_placeholders(self, start: int, end: int) -> tuple[int, int]:
        """(image placeholder tokens before position `start`, placeholders in start..end)."""
        if self._images_before is None:
            return 0, 0
        last = len(self._images_before) - 1              # a fork's resumed tokens, past the prompt, hold none
        start, end = min(start, last), min(end, last)
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
            # The window, not max_new_tokens, set the limit: only a caller that allowed it asked for more room.
            return StopReason.CONTEXT_WINDOW if self.max_new_tokens < self.job.request.max_new_tokens \
                else StopReason.LENGTH
        return None

    # -- one step ---------------------------------------------------------------------------------------------

    def constrain_into(self, mask: StepMask, at: int, scores: torch.FloatTensor) -> None:
        """The row's processors decide its next token's constraints into line `at` of the step's `mask`, in order
        (scores: [1, vocab], this row's logits, read only)."""
        ids = self._ids[:, :self.prompt_length + len(self.generated)]
        for processor in self.processors:
            processor.constrain_into(mask, at, ids, scores)
        if self._fork_positions:
            self._keep_generator_state()

    def _keep_generator_state(self) -> None:
        """A sweep's trace, seeded: the generator's state before this step's draw, where a fork may start (a
        budget's close, or the trace's first intervention), so the fork draws what that budget's request would."""
        position = len(self.generated)
        budget = self.thinking.budget
        if position in self._fork_positions or (budget is not None and budget.free_until == position):
            self._generator_states[position] = None if self._generator is None else \
                self._generator.get_state().numpy().tobytes()

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
        forks = self.thinking.forks(self._fork_closes, self.generated, self._generator_states, self.token_figures)
        if self.job.request.resume is not None:
            stats["resumed_tokens"] = len(self.job.request.resume.generated)
        if self.logprobs is not None:
            stats["logprobs"] = token_figures.report(self.token_figures, stats.get("thinking_tokens", 0),
                                                     self.detokenizer.tokenizer)
        if self.tools is not None:
            reason = self.tools.stop_reason(reason)
            stats.update(self.tools.stats())
        cached = min(self.cached_tokens, self.prompt_length)     # a fork's resumed tokens are output, not prompt
        usage = Usage(self.prompt_length - cached, len(self.generated), cached_prompt_tokens=cached)
        return Finished(reason, usage, stop_sequence=self.stop_matcher.matched, stats=stats, forks=forks)

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
