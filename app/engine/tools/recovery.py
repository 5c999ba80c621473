"""Tool calls written in the forms models really write, taken over by the grammar (`tool_choice: auto` only).

A small model that knows tools often opens a call in a form its template never taught: bare JSON, JSON in a
```json fence, or other wrapper tags (`<function_call>`, `<tools>`, ...). llama.cpp's parsers accept exactly these
drifts (common/chat.cpp, Hermes 2 Pro and generic handlers). Parsing them leniently would pass on whatever the model
wrote, a tool that was never offered included. Here, the moment the answer's start reads as a call in one of these
forms (up to `{"name"`), the grammar takes over from that point: the rest of the call is a valid call of an offered
tool, in the family's native syntax, which the native parser then reads. "Cat" can no longer happen.

Where the trigger applies: the start of the answer only (after whitespace), with `"name"` as the object's first key.
So JSON that is not a call stays text: an object whose first key is another, any JSON later in the answer (after
any text at all), an answer continuing a prefill, and everything on a request without tools or with
`tool_choice: none` (no grammar, or no recovery). The price: on a request that offers tools, an answer that *starts*
with a JSON object whose first key is "name" (a package.json written out as text) becomes a call. Qwen2.5-Coder
0.5B pretty-prints its drifted calls (`{\n  "name": "Edit", ...`) as often as it writes them compactly, so a rule
that left pretty-printed JSON alone would miss half of its calls.
"""
from __future__ import annotations

from collections.abc import Callable

import regex

from ..events import Event
from .formats import ToolCallFormat
from .parser import ToolCallParser

# Wrapper tags of llama.cpp's Hermes parser (its own <tool_call> is the native trigger, not a drift).
WRAPPER_TAGS = ("function_call", "function", "tools", "tool", "response", "json", "JSON", "xml")
# The answer's start, up to the call's "name" key: an optional fence or wrapper tag, an optional list bracket, then
# an object whose first key is "name".
_DRIFT = regex.compile(r'\s*(?:(?P<fence>```[A-Za-z_]*[ \t]*\n)\s*|<(?P<tag>' + "|".join(WRAPPER_TAGS)
                       + r')>\s*)?(?:\[\s*)?\{\s*"name"')
# What the grammar allows between the "name" key and the tool's name once it has taken over.
NAME_SEPARATOR = r'[ ]?:[ ]?"'
_SEPARATOR = regex.compile(NAME_SEPARATOR)

UNDECIDED = "undecided"
NATIVE = "native"


def drift_form(text: str) -> tuple[str, int] | str | None:
    """(form, end of the match) when `text` starts a drifted call; UNDECIDED while it still may; None when not."""
    match = _DRIFT.match(text, partial=True)
    if match is None:
        return None
    if match.partial:
        return UNDECIDED
    if match.group("fence") is not None:
        form = "fenced_json"
    elif match.group("tag") is not None:
        form = f"tag:<{match.group('tag')}>"
    else:
        form = "bare_json"
    return form, match.end()


class RecoveringToolCallParser:
    """A `ToolCallParser` in front of which the answer's start is held until it is known whether it opens a drifted
    call. On one, `take_over(written)` switches the grammar (True: it took the text past the "name" key, `written`)
    and the native parser is given the family's own opening instead, so it reads the call as any native one."""

    def __init__(self, native: ToolCallParser, fmt: ToolCallFormat, take_over: Callable[[str], bool]):
        self.native = native
        self._fmt = fmt
        self._take_over = take_over
        self._held: str | None = ""       # the answer's start while undecided; None once decided
        self._skipping_separator = ""     # after a take-over: the text up to the name's opening quote
        self.recovered_form: str | None = None

    @property
    def made_call(self) -> bool:
        return self.native.made_call

    @property
    def calls(self):
        return self.native.calls

    def forms(self) -> list[str]:
        """How each call was opened: the drift form the first one was recovered from, else "native"."""
        return [self.recovered_form if index == 0 and self.recovered_form else NATIVE
                for index in range(len(self.native.calls))]

    def feed(self, text: str) -> list[Event]:
        if self._held is None:
            return self._after_take_over(text) if self.recovered_form else self.native.feed(text)
        self._held += text
        decided = drift_form(self._held)
        if decided == UNDECIDED:
            return []
        held, self._held = self._held, None
        if decided is None:
            return self.native.feed(held)
        form, end = decided
        if not self._take_over(held[end:]):
            return self.native.feed(held)           # the text past "name" fits no call: it stays text
        self.recovered_form = form
        events = self.native.feed(self._fmt.section_prefix + self._fmt.call_prefix)
        return events + self._after_take_over(held[end:])

    def _after_take_over(self, text: str) -> list[Event]:
        """Drops the separator the grammar let through (`: "`), once, then reads on natively."""
        if self._skipping_separator is None:
            return self.native.feed(text)
        self._skipping_separator += text
        match = _SEPARATOR.match(self._skipping_separator, partial=True)
        if match is None or match.partial:
            return []
        rest = self._skipping_separator[match.end():]
        self._skipping_separator = None
        return self.native.feed(rest) if rest else []

    def flush(self) -> list[Event]:
        events: list[Event] = []
        if self._held:
            events = self.native.feed(self._held)   # the answer ended undecided: it was text
        self._held = None
        return events + self.native.flush()
