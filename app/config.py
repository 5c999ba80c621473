"""The server's configuration: one frozen dataclass, the single source of truth.

Every field is also a CLI flag (`--max-queue`) and an environment variable (`THINKSERVE_MAX_QUEUE`), both derived
from the field list, so adding a setting means adding one field here. Precedence: flag > env var > default.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "THINKSERVE_"


def _opt(default, help, *, choices=None, repeat=False, flag=True):
    return field(default=default, metadata={"help": help, "choices": choices, "repeat": repeat, "flag": flag})


@dataclass(frozen=True)
class Config:
    model: str = _opt("", "a local HF directory, a hub id, or a .gguf file (default: the embedded SmolLM2-135M-Instruct)")
    host: str = _opt("127.0.0.1", "address to listen on")
    port: int = _opt(8000, "port to listen on")
    api_key: str = _opt("", "when set, every /v1 request must carry it (x-api-key or Authorization: Bearer)")
    alias: tuple = _opt(("claude-*",), "model-name pattern served by the loaded model, PATTERN[=MODEL] (repeatable)",
                        repeat=True)
    dtype: str = _opt("auto", "weights dtype", choices=("auto", "float32", "bfloat16", "float16"))
    device: str = _opt("auto", "where the model runs (auto picks CUDA when present)", choices=("auto", "cpu", "cuda"))
    quantize: str = _opt("none", "bitsandbytes quantization, on CUDA and on CPU (4bit: NF4; saves memory; on CPU it "
                                 "decodes slower than float32)", choices=("none", "4bit", "8bit"))
    device_map: str = _opt("none", "auto: spread the model over the GPUs, then CPU RAM, then disk (accelerate's "
                                   "big-model placement, within --max-memory); none: all of it on --device",
                           choices=("none", "auto"))
    max_memory: str = _opt("", "with --device-map auto, the most each device may hold, e.g. '0=20GiB,1=20GiB,"
                               "cpu=64GiB' (a GPU by index or cuda:N; sizes in KiB/MiB/GiB or KB/MB/GB); what does "
                               "not fit is offloaded to disk under --data-dir/offload (default: free memory)")
    max_queue: int = _opt(256, "generations that may wait for a place in the batch; more are refused with 529")
    max_batch_size: int = _opt(16, "generations decoded together, one token each per forward pass")
    prefill_chunk: int = _opt(512, "prompt tokens read per step; bounds how long running streams wait for a newcomer")
    kv_budget_mb: int = _opt(0, "memory for the KV pool, allocated once at start, in MB: slots of the full context "
                                "window, up to twice --max-batch-size (0: a quarter of RAM on a CPU, 80%% of the GPU "
                                "memory the weights leave free)")
    no_prefix_cache: bool = _opt(False, "read every prompt afresh (by default, idle KV slots keep their tokens' KV, and "
                                        "a prompt that starts the same way reads only the rest)")
    compile: bool = _opt(False, "torch.compile the decode step: about 20%% faster decoding on a CPU, after minutes "
                                "of compiling at start; on CUDA, replayed as CUDA graphs (see README)")
    torch_threads: int = _opt(0, "torch CPU threads (0: half the cores, at least 1, so another torch process on the "
                                 "same machine keeps working)")
    min_thinking_budget: int = _opt(1024, "smallest thinking.budget_tokens accepted (Anthropic's is 1024)")
    adaptive_thinking_budget: int = _opt(1024, "thinking budget for thinking.type=adaptive (Claude Code sends it)")
    effort_budgets: str = _opt("low=1024,medium=2048,high=4096,xhigh=8192,max=16384",
                               "thinking budget for each output_config.effort level, LEVEL=TOKENS,... (levels left "
                               "out keep the default; the default is LiteLLM's table); applies to adaptive thinking")
    thinking_profile: str = _opt("auto", "how the model thinks: detected, or named",
                                 choices=("auto", "qwen3", "deepseek-r1", "prompted"))
    thinking_transition: str = _opt("\n\nConsidering the limited time by the user, I have to give the solution "
                                    "based on the thinking directly now.\n",
                                    "phrase forced before the end-of-thinking marker when the budget runs out")
    tool_format: str = _opt("auto", "how the model writes tool calls: detected from its chat template, or named",
                            choices=("auto", "hermes", "llama3", "mistral", "generic"))
    allow_url_fetch: bool = _opt(False, "fetch the url sources of image and document blocks (off: a 400; on, any "
                                        "client can make the server fetch any URL it can reach: only for trusted "
                                        "clients)")
    max_request_bytes: int = _opt(32 * 1024 * 1024, "largest request body accepted (413 above)")
    max_batch_request_bytes: int = _opt(256 * 1024 * 1024, "largest POST /v1/messages/batches body accepted "
                                                           "(Anthropic's limit is 256 MB)")
    batch_concurrency: int = _opt(8, "requests of Message Batches generated at once (background rows, after "
                                     "interactive requests)")
    batch_expiry_hours: float = _opt(24.0, "a Message Batch's requests not done this long after its creation end "
                                           "as expired")
    max_file_bytes: int = _opt(500 * 1024 * 1024, "largest file POST /v1/files accepts (Anthropic's limit is 500 "
                                                   "MB); a larger upload gets 413")
    threads: int = _opt(16, "HTTP worker threads")
    data_dir: str = _opt(str(Path.home() / ".cache" / "thinkserve"),
                         "where converted weights, keys, Message Batches and files are kept")
    signing_key: str = _opt("", "secret for thinking-block signatures (default: one generated and kept in --data-dir)")
    ping_interval: float = _opt(15.0, "seconds of silence in a stream before a ping event is sent")
    debug: bool = _opt(False, "use Flask's development server and debug logging")

    def effort_budget_table(self) -> dict[str, int]:
        """--effort-budgets as {level: tokens}, over the defaults. ValueError names what is wrong."""
        return parse_effort_budgets(self.effort_budgets)

    def alias_patterns(self) -> list[str]:
        """The fnmatch patterns of --alias, without their optional '=MODEL' targets."""
        return [a.split("=", 1)[0] for a in self.alias]


EFFORT_LEVELS = ("low", "medium", "high", "xhigh", "max")
# LiteLLM's reasoning_effort → budget_tokens table (litellm/constants.py, DEFAULT_REASONING_EFFORT_*_THINKING_BUDGET),
# the peer mapping that exists; Anthropic publishes no token figure for its levels.
DEFAULT_EFFORT_BUDGETS = {"low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192, "max": 16384}


def parse_effort_budgets(text: str) -> dict[str, int]:
    table = dict(DEFAULT_EFFORT_BUDGETS)
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        level, _, tokens = item.partition("=")
        level = level.strip()
        if level not in EFFORT_LEVELS:
            raise ValueError(f"--effort-budgets: unknown level {level!r}; the levels are {', '.join(EFFORT_LEVELS)}")
        try:
            table[level] = int(tokens)
        except ValueError:
            raise ValueError(f"--effort-budgets: {item!r} must be LEVEL=TOKENS, TOKENS an integer") from None
        if table[level] < 1:
            raise ValueError(f"--effort-budgets: {item!r}: a budget must be at least 1 token")
    return table


def _fields():
    return [f for f in dataclasses.fields(Config) if f.metadata.get("flag", True)]


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _parse(f: dataclasses.Field, raw: str):
    if f.type in ("bool", bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{env_name(f.name)}: expected a boolean, got {raw!r}")
    if f.type in ("int", int):
        return int(raw)
    if f.type in ("float", float):
        return float(raw)
    if f.metadata.get("repeat"):
        return tuple(p.strip() for p in raw.split(",") if p.strip())
    return raw


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per Config field; defaults stay None so we can tell a flag that was given from one that was not."""
    for f in _fields():
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} [env {env_name(f.name)}; default {f.default!r}]"
        if f.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", default=None, help=help_text)
        elif f.metadata.get("repeat"):
            parser.add_argument(flag, action="append", default=None, help=help_text)
        else:
            kind = {"int": int, "float": float}.get(f.type, str)
            parser.add_argument(flag, type=kind, default=None,
                                choices=f.metadata.get("choices"), help=help_text)


def resolve(args: argparse.Namespace | None = None, environ: dict | None = None) -> tuple[Config, dict]:
    """Build the Config from flags, then env vars, then defaults; also say where each value came from."""
    environ = os.environ if environ is None else environ
    values, sources = {}, {}
    for f in _fields():
        given = getattr(args, f.name, None) if args is not None else None
        if given is not None:
            values[f.name], sources[f.name] = (tuple(given) if f.metadata.get("repeat") else given), "flag"
        elif env_name(f.name) in environ:
            values[f.name], sources[f.name] = _parse(f, environ[env_name(f.name)]), "env"
        else:
            sources[f.name] = "default"
            continue
        choices = f.metadata.get("choices")
        if choices and values[f.name] not in choices:
            raise ValueError(f"{f.name}: {values[f.name]!r} is not one of {', '.join(choices)}")
    config = Config(**values)
    config.effort_budget_table()         # a malformed table is a clear message at start, not a failure later
    return config, sources
