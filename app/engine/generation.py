"""Runs one job through `model.generate()` and turns what it produces into events.

Everything here runs in the worker thread, the only thread that touches the model. `generate()` blocks; the
streamer it feeds calls back into this job's output pipeline on the same thread, token by token, and the pipeline
puts events straight onto the job's queue. No helper thread, no shared state: every object that holds
per-request state (streamer, parser, stop matcher, stopping criteria, logits processors) is built here, for this
job only.
"""
from __future__ import annotations

import copy
import threading
from collections.abc import Callable

import torch
from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from .events import Event, Finished, StopReason, Usage
from .job import Job
from .loader import LoadedModel
from .output_pipeline import OutputPipeline
from .profiles import ThinkingProfile, detect_profile
from .request import GenerationRequest
from .stop_sequences import StopSequenceCriteria, StopSequenceMatcher
from .streamer import StreamerCatchUp, TokenStreamer
from .thinking_setup import RequestThinking
from .tool_setup import RequestTools

# Knobs that only matter when sampling. The request decides them; leaving the checkpoint's values in place would
# make greedy decoding warn about them ("temperature is set but do_sample=False") on every request.
SAMPLING_ONLY_FIELDS = ("temperature", "top_p", "top_k", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff")


class CancelCriteria(StoppingCriteria):
    """Ends `generate()` within one token once the job's cancel flag is set (the client went away)."""

    def __init__(self, cancelled: threading.Event):
        self.cancelled = cancelled

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.cancelled.is_set(), dtype=torch.bool, device=input_ids.device)


def run_generation(loaded: LoadedModel, job: Job, emit: Callable[[Event], None],
                   profile: ThinkingProfile | None = None) -> Finished:
    """Generate for `job`, calling `emit` with each delta as it is produced; returns the closing Finished event.

    `profile` is the model's thinking profile (detected from the tokenizer if not given); it must be the one the
    job's prompt was rendered with. Exceptions from the model propagate: the worker reports them as Failed.
    """
    request, prompt_length = job.request, len(job.prompt_ids)
    thinking = RequestThinking(loaded, request, profile or detect_profile(loaded.tokenizer), prompt_length)
    tools = RequestTools(job.tool_grammar, request.tools, loaded.end_of_turn_ids, thinking) \
        if job.tool_grammar is not None else None
    # 1) Room left in the context window bounds the output, whatever the request asked for. Thinking tokens are
    #    generated tokens: they count against it, and against max_new_tokens, like any other.
    max_new_tokens = min(request.max_new_tokens, loaded.context_window - prompt_length)
    if max_new_tokens <= 0:
        return Finished(StopReason.LENGTH, Usage(prompt_length, 0), stats=thinking.stats([]))

    # 2) The per-request chain: streamer → parser (thinking / answer) → tool-call parser (text / calls) → stop
    #    matcher (text only) → emit.
    stop_matcher = StopSequenceMatcher(request.stop_sequences)
    pipeline = OutputPipeline(thinking.parser(), stop_matcher, emit, tools.parser if tools else None)
    streamer = TokenStreamer(loaded.tokenizer, prompt_length, loaded.end_of_turn_ids, on_text=pipeline.feed,
                             shown_special_ids=thinking.shown_special_ids)
    stopping = StoppingCriteriaList([
        StreamerCatchUp(streamer),       # first: the criteria after it read state the streamer updates
        CancelCriteria(job.cancelled),
        StopSequenceCriteria(stop_matcher),
    ])

    # 3) Generate. input_ids: [1, prompt_length]; batch 1, so every position is real and the mask is all ones.
    input_ids = torch.tensor([job.prompt_ids], dtype=torch.long, device=loaded.device)
    loaded.model.generate(
        input_ids,
        attention_mask=torch.ones_like(input_ids),
        generation_config=generation_config_for(loaded, request, max_new_tokens),
        logits_processor=request_logits_processors(thinking, tools),
        stopping_criteria=stopping,
        streamer=streamer,
    )
    pipeline.finish()

    # 4) Why it stopped. A stop sequence beats end-of-turn: the text after it was never shown.
    if stop_matcher.matched is not None:
        reason = StopReason.STOP_SEQUENCE
    elif streamer.ended_with_end_of_turn:
        reason = StopReason.END
    elif job.cancelled.is_set():
        reason = StopReason.CANCELLED
    else:
        reason = StopReason.LENGTH
    stats = thinking.stats(streamer.token_ids)
    if tools is not None:
        reason = tools.stop_reason(reason)
        stats.update(tools.stats())
    return Finished(reason, Usage(prompt_length, streamer.generated_tokens), stop_sequence=stop_matcher.matched,
                    stats=stats)


def generation_config_for(loaded: LoadedModel, request: GenerationRequest, max_new_tokens: int) -> GenerationConfig:
    """The checkpoint's generation config with this request's sampling and limits; a copy, never shared."""
    sampling = request.sampling
    greedy = sampling.temperature <= 0
    settings = dict.fromkeys(SAMPLING_ONLY_FIELDS)       # None = off, unless the request turns it on
    if not greedy:
        settings.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k)
    end_of_turn = sorted(loaded.end_of_turn_ids)
    pad = loaded.tokenizer.pad_token_id
    settings.update(
        do_sample=not greedy,
        max_new_tokens=max_new_tokens,
        max_length=None,
        eos_token_id=end_of_turn or None,
        pad_token_id=pad if pad is not None else (end_of_turn[0] if end_of_turn else None),
    )
    config = copy.deepcopy(loaded.model.generation_config)
    # One update: GenerationConfig.update() validates after each call, so setting temperature before do_sample
    # in two calls would warn about a combination that never reaches generate().
    config.update(**settings)
    return config


def request_logits_processors(thinking: RequestThinking, tools: RequestTools | None) -> LogitsProcessorList:
    """The request's own logits processors, built fresh for every job because they keep per-request state.

    Sampling (temperature, top_p, top_k) is handled by transformers from the GenerationConfig, after these: a token
    they force stays forced whatever the temperature, and a token the grammar bans stays banned. The thinking budget
    comes first; the tool grammar follows it, acting only once the thinking section is closed (the budget activates
    it in the step that closes the section).
    """
    return LogitsProcessorList([*thinking.processors(), *([tools.processor] if tools else [])])
