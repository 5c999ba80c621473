"""One request's constraint plan: everything that shapes its output, decided once, when it is submitted.

Whatever protocol asked (Anthropic's tools, tool_choice, `strict` and `output_config.format`; OpenAI's tools and
`response_format`), the request reaches the engine as a `GenerationRequest`, and this plan is made from it before the
job is queued, so a schema the grammar cannot take is the caller's 400 and the step loop only generates. The row
then builds its processors from the plan alone: nothing is wired between them from outside.

- `thinking_first`: the output opens inside a thinking section (thinking is on and its budget can hold the closing
  marker). The budget processor runs it; the answer's grammar starts with the first token after it has closed.
- `answer`: the answer's grammar, compiled and cached per (tools, choice, format, schema): calls, one JSON value
  of a schema, or either; None when the answer is free text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:                        # the grammar module imports torch; the job module, which holds a plan, must not
    from .tools.grammar import ToolGrammar


@dataclass(frozen=True)
class ConstraintPlan:
    thinking_first: bool = False
    answer: ToolGrammar | None = None
