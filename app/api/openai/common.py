"""The conversion pieces both OpenAI adapters share (chat completions in `convert`, responses in
`responses_convert`): each reads its own JSON, then builds the same engine request through these, so both protocols
get the same chat template, tool grammar, answer format and thinking budget.

Errors name the caller's field (`path`, `param`), since the two APIs spell the same thing differently
(`messages.2.tool_call_id` / `input.2.call_id`, `max_completion_tokens` / `max_output_tokens`).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence

from ...engine.request import GenerationRequest, Sampling, ThinkingSettings, ToolChoice
from ...engine.tools.answer_format import answer_schema_problems, strict_tool_problems
from ...service.errors import InvalidRequestError
from ..images import RequestImages

_DATA_URL = re.compile(r"data:(?P<media_type>[\w.+-]+/[\w.+-]+)?(?:;[\w-]+=[^;,]*)*;base64,(?P<data>.*)", re.S)


def image_source(url: str) -> dict:
    """An image URL as the image source Anthropic requests carry, so one decoder checks both."""
    match = _DATA_URL.fullmatch(url)
    if match:
        return {"type": "base64", "media_type": match["media_type"], "data": match["data"]}
    if url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    return {"type": "invalid"}


def check_image_url(url: str, param: str) -> None:
    if not url.startswith(("data:", "http://", "https://")):
        raise InvalidRequestError(f"{param}: must be a data: URL (base64) or an http(s) URL", param=param)


def parse_arguments(text: str, param: str) -> dict:
    """A call's arguments, sent as JSON text, as the dict chat templates take."""
    try:
        arguments = json.loads(text or "{}")
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        raise InvalidRequestError(f"{param}: must be a JSON object, as text", param=param)
    return arguments


def append_turn(turns: list[dict], turn: dict) -> None:
    """Consecutive turns of one role are merged: templates expect the roles to alternate."""
    last = turns[-1] if turns else None
    if last is None or last["role"] != turn["role"] or turn["role"] == "tool":
        turns.append(turn)
        return
    last["content"] = "\n\n".join(t for t in (last["content"], turn["content"]) if t)
    if turn.get("tool_calls"):
        last["tool_calls"] = [*last.get("tool_calls", []), *turn["tool_calls"]]
    if turn.get("reasoning_content"):
        last["reasoning_content"] = "\n\n".join(t for t in (last.get("reasoning_content"),
                                                             turn["reasoning_content"]) if t)


def latest_reasoning_only(turns: list[dict]) -> None:
    """The model sees earlier reasoning only for the latest assistant turn inside a tool loop, as the Anthropic
    side (and the Qwen3 / DeepSeek templates) do."""
    keep = None
    for turn in reversed(turns):
        if turn["role"] == "assistant":
            keep = turn
            break
        if turn["role"] != "tool":
            break
    for turn in turns:
        if turn is not keep:
            turn.pop("reasoning_content", None)


def effort_thinking(effort: str | None, max_tokens: int | None, budgets: Mapping[str, int],
                    cap_param: str) -> ThinkingSettings | None:
    """An OpenAI reasoning effort as a thinking budget from the --effort-budgets table; None or "none": no thinking."""
    if effort in (None, "none"):
        return None
    # OpenAI's "minimal" is below "low", the table's smallest level.
    level = "low" if effort == "minimal" else effort
    budget = budgets[level]
    if max_tokens is not None:
        # As adaptive thinking on the Anthropic side: at most half of the output cap, so an answer fits.
        budget = min(budget, max_tokens // 2)
    if budget < 1:
        raise InvalidRequestError(f"{cap_param}: reasoning needs at least 2 tokens", param=cap_param)
    return ThinkingSettings(budget_tokens=budget, effort=level)


def tool_choice(mode: str | None, name: str | None, *, parallel: bool | None) -> ToolChoice:
    """OpenAI's tool_choice (`auto` / `none` / `required`, or a function's name) as the grammar's."""
    single = parallel is False
    if name is not None:
        return ToolChoice(mode="tool", name=name, disable_parallel=single)
    return ToolChoice(mode={None: "auto", "auto": "auto", "none": "none", "required": "any"}[mode],
                      disable_parallel=single)


def checked_output_schema(schema: dict, path: str) -> dict:
    problems = answer_schema_problems(schema)
    if problems:
        raise InvalidRequestError(f"{path}: this schema cannot be enforced by the grammar: {'; '.join(problems)}",
                                  param=path)
    return schema


def function_tools(specs: Iterable[tuple[str, str | None, dict, bool | None]],
                   parameters_paths: Sequence[str]) -> tuple[dict, ...]:
    """(name, description, parameters, strict) per function, in the engine's shape; a strict function whose schema
    the grammar cannot enforce is a 400 naming its parameters' path in the request (`parameters_paths`, in order)."""
    tools = tuple({"type": "function", "function": {"name": name, "description": description or "",
                                                     "parameters": parameters, **({"strict": True} if strict else {})}}
                  for name, description, parameters, strict in specs)
    for index, problem in strict_tool_problems(tools):
        path = parameters_paths[index]
        raise InvalidRequestError(f"{path}: strict function: this schema cannot be enforced by the grammar: "
                                  f"{problem}", param=path)
    return tools


def generation_request(*, system: str, turns: list[dict], thinking: ThinkingSettings | None, tools: tuple[dict, ...],
                       choice: ToolChoice, output_schema: dict | None, max_new_tokens: int, sampling: Sampling,
                       images: RequestImages, stops: tuple[str, ...] = (), param: str,
                       format_field: str) -> GenerationRequest:
    """The engine request: a final assistant turn is the prefill the model continues (as on llama.cpp), which
    neither reasoning nor an answer format may follow. `param` names the conversation's field, `format_field` the
    answer format's."""
    latest_reasoning_only(turns)
    prefill = ""
    if turns and turns[-1]["role"] == "assistant":
        if turns[-1].get("tool_calls"):
            raise InvalidRequestError(f"{param}: the conversation ends with tool calls; send each call's result "
                                      "after it", param=param)
        prefill = turns.pop()["content"]
        for what, given in (("reasoning", thinking is not None), (format_field, output_schema is not None)):
            if prefill and given:
                raise InvalidRequestError(f"{param}: a final assistant message (a prefill) cannot be combined with "
                                          f"{what}; end the conversation with a user message", param=param)
    if not turns:
        raise InvalidRequestError(f"{param}: at least one user message is required", param=param)
    messages = ([{"role": "system", "content": system}] if system else []) + turns
    return GenerationRequest(
        messages=tuple(messages), prefill=prefill, thinking=thinking, tools=tools, tool_choice=choice,
        output_schema=output_schema, max_new_tokens=max_new_tokens, stop_sequences=stops, sampling=sampling,
        images=tuple(images.images), image_nonce=images.nonce if images.images else "")
