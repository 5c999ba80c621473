"""`LocalEngine`: the `Engine` the server runs, a transformers model in this process.

It is built from a Config without loading anything, so the HTTP server can start at once and answer /health with
503 while `start_loading()` loads in the background. From a notebook, `load()` does the same synchronously:

    engine = LocalEngine(Config())
    engine.load()
    for event in engine.submit(GenerationRequest(messages=({"role": "user", "content": "Hi"},))).events():
        print(event)
"""
from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable

import torch

from ..config import Config
from .errors import ModelLoadError, NotReadyError, PromptTooLongError, ToolGrammarError
from .constraints import ConstraintPlan
from .job import Job, JobHandle
from .model.loader import LoadedModel, load_model, model_id_for_spec
from .model.profiles import ThinkingProfile, profile_for
from .model.prepare import prepare_prompt
from .model.prompt import prompt_opens_thinking, render_prompt
from .prepared import PreparedPrompt
from .request import GenerationRequest
from .scheduler.loop import Scheduler, SchedulerSettings
from .tools.answer_format import answer_schema_problems, strict_tool_problems
from .tools.formats import ToolCallFormat, tool_format_for
from .tools.grammar import ToolGrammar, compile_tool_grammar, model_vocab_size

log = logging.getLogger(__name__)


class LocalEngine:
    """Implements `app.engine.interface.Engine`."""

    def __init__(self, config: Config, loader: Callable[[Config], LoadedModel] = load_model):
        self.config = config
        self._loader = loader            # injectable so tests can serve a tiny model through the real path
        self.model_id = model_id_for_spec(config.model)   # known before loading, for /v1/models
        self.context_window = 0          # known once the model is loaded
        # How the served model thinks (markers, switch, transition): detected from its template and tokenizer at
        # load, under --thinking-profile / --thinking-transition. None until loaded.
        self.thinking_profile: ThinkingProfile | None = None
        # How it writes tool calls (`tool_formats`): detected from its chat template at load, under --tool-format.
        self.tool_format: ToolCallFormat | None = None
        self._loaded: LoadedModel | None = None
        self._scheduler: Scheduler | None = None
        self._error: str | None = None
        self._ready = threading.Event()
        self._load_lock = threading.Lock()
        self._loading_thread: threading.Thread | None = None

    # -- loading -----------------------------------------------------------------------------------------------

    def start_loading(self) -> None:
        """Load in a background thread and return at once; `is_ready()` / `load_error()` tell how it went."""
        with self._load_lock:
            if self._loading_thread is not None or self._ready.is_set():
                return
            self._loading_thread = threading.Thread(target=self._load_in_background, name="thinkserve-loader",
                                                    daemon=True)
            self._loading_thread.start()

    def load(self) -> None:
        """Load now (blocking) and start the step loop. Raises ModelLoadError."""
        with self._load_lock:
            if self._ready.is_set():
                return
            try:
                loaded = self._loader(self.config)
            except ModelLoadError as error:
                self._error = str(error)
                raise
            except Exception as error:
                self._error = f"{type(error).__name__}: {error}"
                raise ModelLoadError(self._error) from error
            try:
                profile = profile_for(loaded.tokenizer, self.config)
                tool_format = tool_format_for(loaded.tokenizer, self.config)
            except ValueError as error:
                self._error = str(error)
                raise ModelLoadError(self._error) from error
            log.info("Thinking profile %s (%s, markers %s %s); tool-call format %s", profile.name, profile.switch,
                     profile.open_marker, profile.close_marker, tool_format.name)
            torch.set_num_threads(self.config.torch_threads or default_torch_threads())
            try:
                scheduler = Scheduler(loaded, profile, scheduler_settings(self.config))
            except ValueError as error:          # a KV budget too small for one row of the context window
                self._error = str(error)
                raise ModelLoadError(self._error) from error
            try:
                scheduler.start()            # warms the runner up: compiles the decode step, with --compile
            except Exception as error:
                scheduler.close()
                self._error = f"warming up the decode step failed: {type(error).__name__}: {error}"
                raise ModelLoadError(self._error) from error
            self._loaded, self._scheduler, self._error = loaded, scheduler, None
            self.thinking_profile, self.tool_format = profile, tool_format
            self.model_id, self.context_window = loaded.model_id, loaded.context_window
            self._ready.set()

    def is_ready(self) -> bool:
        return self._ready.is_set()

    def load_error(self) -> str | None:
        return self._error

    # -- serving -----------------------------------------------------------------------------------------------

    @property
    def accepts_images(self) -> bool:
        """A vision-language model (loaded with its processor) sees images; any other reads text only."""
        loaded = self._loaded
        return loaded is not None and loaded.processor is not None

    def render_prompt(self, request: GenerationRequest) -> str:
        loaded = self._require_loaded()
        return render_prompt(loaded.tokenizer, request, self.thinking_profile, self.tool_format,
                             vision=loaded.processor is not None)

    def prepare(self, request: GenerationRequest) -> PreparedPrompt:
        """The prompt as the model reads it: rendered, tokenized, images processed. Raises NotReadyError or
        PromptError."""
        return prepare_prompt(self._require_loaded(), request, self.thinking_profile, self.tool_format)

    def count_prompt_tokens(self, request: GenerationRequest) -> int:
        return len(self.prepare(request).ids)

    def submit(self, request: GenerationRequest, prepared: PreparedPrompt | None = None) -> JobHandle:
        """Queue a generation of `prepared` (prepared here when not given). Raises NotReadyError, PromptError,
        PromptTooLongError, ToolGrammarError or QueueFullError."""
        # Prepared in the caller's thread, so template errors reach the caller and the loop only generates.
        prepared = prepared if prepared is not None else self.prepare(request)
        # A prompt that fits but leaves less room than max_new_tokens is served: the output stops (LENGTH) when
        # the window is full.
        if len(prepared.ids) > self.context_window:
            raise PromptTooLongError(f"the prompt is {len(prepared.ids)} tokens; the model's context window is "
                                     f"{self.context_window}")
        return self._scheduler.submit(Job(request=request, prompt=prepared, constraints=self._plan(request)))

    def stats(self) -> dict:
        """Running, waiting and prefix-cache figures of the step loop ({} before the model is loaded)."""
        scheduler = self._scheduler
        return scheduler.stats() if scheduler is not None else {}

    def close(self) -> None:
        """Stop the step loop: running generations are cancelled, waiting ones fail. Later submits raise."""
        scheduler = self._scheduler
        if scheduler is not None:
            scheduler.close()

    # -- helpers -----------------------------------------------------------------------------------------------

    def _plan(self, request: GenerationRequest) -> ConstraintPlan:
        loaded = self._require_loaded()
        return ConstraintPlan(
            thinking_first=prompt_opens_thinking(loaded.tokenizer, self.thinking_profile, request.thinking),
            answer=self._answer_grammar(request))

    def _answer_grammar(self, request: GenerationRequest) -> ToolGrammar | None:
        loaded = self._require_loaded()
        check_enforceable(request)
        grammar = compile_tool_grammar(loaded.tokenizer, request.tools, request.tool_choice, self.tool_format,
                                       vocab_size=model_vocab_size(loaded.model), answer_schema=request.output_schema,
                                       after_thinking=request.thinking is not None,
                                       citations=len(request.citations))
        if grammar is not None and not grammar.cache_hit:
            log.info("Compiled the tool grammar (%s, %d tools%s%s) in %.0f ms", grammar.choice.mode,
                     len(request.tools), ", an answer format" if grammar.answer_schema is not None else "",
                     f", {grammar.citations} citable passages" if grammar.citations else "",
                     grammar.compile_seconds * 1000)
        if grammar is not None and grammar.unsupported:
            # Known before generating: the grammar will not hold these; validate_tool_input checks every call.
            log.warning("Tool schema keywords the grammar does not enforce: %s", "; ".join(grammar.unsupported))
        return grammar

    def _require_loaded(self) -> LoadedModel:
        if not self._ready.is_set():
            if self._error is not None:
                raise NotReadyError(f"the model failed to load: {self._error}")
            raise NotReadyError("the model is still loading")
        return self._loaded

    def _load_in_background(self) -> None:
        try:
            self.load()
        except ModelLoadError as error:
            log.error("Loading the model failed: %s", error)
        finally:
            with self._load_lock:
                self._loading_thread = None


def check_enforceable(request: GenerationRequest) -> None:
    """Raise ToolGrammarError, before anything is generated, where the grammar could not keep a promise: an answer
    format or a `strict` tool whose schema uses a keyword it does not enforce, or an answer format continuing a
    prefill (the grammar would start in the middle of the JSON). The api layer checks the same first, to name the
    field; this keeps the promise for every caller. With citations, a prefill that ends inside a mark is refused too.
    """
    if request.output_schema is not None:
        problems = answer_schema_problems(request.output_schema)
        if problems:
            raise ToolGrammarError(f"the answer format's schema cannot be enforced: {'; '.join(problems)}")
        if request.prefill:
            raise ToolGrammarError("an answer format cannot be combined with an assistant prefill")
    if request.citations and re.search(r"\[[0-9]*\Z", request.prefill):
        # The grammar starts after the prefill: "2]" would be free text there, and show as a broken mark.
        raise ToolGrammarError("messages: with citations, an assistant prefill cannot end inside a citation mark "
                               "(a '[' and digits)")
    problems = strict_tool_problems(request.tools)
    if problems:
        raise ToolGrammarError("a strict tool's input_schema cannot be enforced: "
                               + "; ".join(f"tool {index}: {problem}" for index, problem in problems))


def default_torch_threads() -> int:
    """Half the cores, at least one. torch's own default (every core, threads spinning between operations) makes two
    torch processes on one machine starve each other: on 2 cores each fell to 0.25x its speed alone, while with one
    thread each both kept 0.96x, and a batch of 8 still decodes ~4x faster than one stream
    (bench/thread_contention.py, bench/batching.py). --torch-threads N overrides it."""
    return max(1, (os.cpu_count() or 2) // 2)


def scheduler_settings(config: Config) -> SchedulerSettings:
    return SchedulerSettings(max_batch_size=config.max_batch_size, max_waiting=max(0, config.max_queue),
                             prefill_chunk=max(1, config.prefill_chunk),
                             kv_budget_bytes=max(0, config.kv_budget_mb) * 2**20, prefix_cache=not config.no_prefix_cache,
                             compile_decode=config.compile)
