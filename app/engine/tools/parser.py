"""Splits the model's answer text, as it streams, into text and tool calls in the model's native call syntax.

Fed the answer (the thinking section already taken out by `OutputParser`), it returns engine events: `TextDelta`
for text; for each call `ToolCallStart` as soon as the name is known, `ToolArgsDelta` pieces while the arguments are
generated, `BlockEnd` when the call's JSON closes. A text block that a call follows is closed with `BlockEnd` first.

Guarantees:
- no part of the call trigger (`<tool_call>`, `[TOOL_CALLS]`, ...) reaches a TextDelta: a tail that could still
  become the trigger is held back until it does or cannot;
- the arguments pieces of a call, concatenated, are a valid JSON prefix after every piece and a JSON object at the
  end: the JSON is checked character by character (`partial_json.JsonReader`) and released only up to points where
  it can be closed, so even a generation cut off mid-call is completed into a valid object (`complete=False`);
- whitespace between calls, and around them, never becomes a text block.

Streaming (`stream_arguments=True`) is for output held to the tool grammar, where calls cannot be malformed. Without
a grammar, pass False: each call is then reported when its JSON closes, and a malformed one (bad JSON, no name, an
unknown tool, arguments that are not an object) is passed on as the text it is. If a streamed call does break (only
possible without a grammar), it is closed with the valid prefix sent so far, and the text after the break is read
as text again. Output that ends (the token limit) mid-call closes a streamed call into a valid object; a call whose
name was not out yet is dropped when streaming, and is text otherwise.
"""
from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable, Collection
from dataclasses import dataclass

from ..events import BlockEnd, Event, TextDelta, ToolArgsDelta, ToolCallStart
from ..text.holdback import undecided_tail_length
from .partial_json import JsonReader, JsonSyntaxError
from .formats import ToolCallFormat

_ID_ALPHABET = string.ascii_letters + string.digits
_TEXT, _CALL, _AFTER_CALL = "text", "call", "after_call"


def new_tool_call_id() -> str:
    """A call's id: 24 random letters and digits. Each API writes it in its own shape (Anthropic's `toolu_` + it,
    OpenAI's `call_` + it): the engine knows no protocol's ids."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


@dataclass(frozen=True)
class ParsedToolCall:
    call_id: str
    name: str
    input: dict
    complete: bool = True              # False: the output ended (or broke) mid-call and the parser closed the JSON


class _Malformed(Exception):
    pass


@dataclass
class _Call:
    call_id: str
    name: str | None = None
    name_start: int | None = None
    args_start: int | None = None      # offsets into the section text
    args_end: int | None = None
    args_is_object: bool = False       # only an object is streamed; anything else is judged when it ends
    input: dict | None = None
    started: bool = False              # ToolCallStart was emitted
    sent: str = ""                     # the arguments text emitted so far
    consumed: int = 0                  # how much of the section's arguments text that covers
    safe_end: int | None = None        # the last offset at which the arguments can be closed ...
    safe_closers: str = ""             # ... and what closes them there


class ToolCallParser:
    def __init__(self, fmt: ToolCallFormat, *, tool_names: Collection[str] | None = None,
                 stream_arguments: bool = True, new_id: Callable[[], str] = new_tool_call_id):
        self.fmt = fmt
        self._names = None if tool_names is None else frozenset(tool_names)
        self._stream = stream_arguments
        self._new_id = new_id
        self._call_level = 2 if fmt.section_prefix else 1   # depth of the name/arguments keys in the JSON
        self.calls: list[ParsedToolCall] = []
        self._state = _TEXT
        self._held = ""                # text that may still become the trigger, or the closing tag
        self._ws_held = ""             # trailing whitespace of the text: dropped if a call follows
        self._text_open = False        # a text block has content
        self._after_call = False       # the last block was a call: leading whitespace is formatting
        self._section = ""             # the call section's text, trigger included
        self._json_base = 0            # where the JSON starts in it
        self._reader: JsonReader | None = None
        self._call: _Call | None = None
        self._section_events: list[Event] = []
        self._section_shown = False    # some event of this section has been emitted

    @property
    def made_call(self) -> bool:
        return bool(self.calls) or (self._call is not None and self._call.started)

    def feed(self, text: str) -> list[Event]:
        events: list[Event] = []
        pending: str | None = text
        while pending:
            if self._state == _TEXT:
                pending = self._read_text(pending, events)
            elif self._state == _CALL:
                pending = self._read_call(pending, events)
            else:
                pending = self._read_closing_tag(pending, events)
        return events

    def flush(self) -> list[Event]:
        """The output ended: settle whatever was held back."""
        events: list[Event] = []
        if self._state == _CALL:
            self._end_section_early(events)
        held, self._held = self._held, ""
        if self._state == _TEXT and held:
            self._text(held, events)
        if self._ws_held and self._text_open:
            events.append(TextDelta(self._ws_held))
        self._ws_held, self._state = "", _TEXT
        return events

    # --- text -----------------------------------------------------------------------------------------------

    def _read_text(self, pending: str, events: list[Event]) -> str | None:
        pending, self._held = self._held + pending, ""
        trigger = self.fmt.trigger
        at = pending.find(trigger)
        if at < 0:
            keep = undecided_tail_length(pending, (trigger,))
            self._text(pending[:len(pending) - keep], events)
            self._held = pending[len(pending) - keep:]
            return None
        self._text(pending[:at], events)
        self._state, self._reader, self._call = _CALL, JsonReader(), None
        self._section_events, self._section_shown = [], False
        json_from = at if self.fmt.trigger_opens_json else at + len(trigger)
        self._section = pending[at:json_from]
        self._json_base = len(self._section)
        return pending[json_from:]

    def _text(self, text: str, events: list[Event]) -> None:
        text, self._ws_held = self._ws_held + text, ""
        if not self._text_open and self._after_call:
            text = text.lstrip()
        body = text.rstrip()
        if body:
            events.append(TextDelta(body))
            self._text_open = True
        self._ws_held = text[len(body):]

    def _read_closing_tag(self, pending: str, events: list[Event]) -> str | None:
        pending, self._held = self._held + pending, ""
        tag, rest = self.fmt.closing_tag, pending.lstrip()
        if rest.startswith(tag):
            self._state = _TEXT
            return rest[len(tag):]
        if tag.startswith(rest):
            self._held = pending       # still undecided (whitespace, or part of the tag)
            return None
        self._state = _TEXT            # no closing tag: the model went on with text
        return pending

    # --- call JSON ------------------------------------------------------------------------------------------

    def _read_call(self, pending: str, events: list[Event]) -> str | None:
        base = len(self._section)
        self._section += pending
        for index, char in enumerate(pending):
            position = base + index
            try:
                for boundary in self._reader.push(char):
                    self._on_boundary(boundary, position, char, events)
            except (JsonSyntaxError, _Malformed):
                return self._break_section(position, pending[index + 1:], events)
            self._track_safe_point(position)
            if self._reader.complete:
                self._section = self._section[:position + 1]
                self._close_section(events)
                return pending[index + 1:]
        if self._stream:
            self._send_arguments(events)
        return None

    def _on_boundary(self, boundary: tuple, position: int, char: str, events: list[Event]) -> None:
        kind, depth, key = boundary[:3]
        if kind == "start":
            if depth < self._call_level - 1 and char != "[":
                raise _Malformed("the calls of a section must be a JSON list")
            if depth == self._call_level - 1:
                if char != "{":
                    raise _Malformed("a call must be a JSON object")
                self._call = _Call(self._new_id())
            elif depth == self._call_level and self._call is not None:
                if key == "name":
                    self._call.name_start = position
                elif key == self.fmt.arguments_key:
                    self._call.args_start = position
                    self._call.args_is_object = char == "{"
            return
        end = position + 1 if boundary[3] else position
        call = self._call
        if call is None:
            return
        if depth == self._call_level and key == "name":
            name = json.loads(self._section[call.name_start:end], strict=False)
            if not isinstance(name, str) or (self._names is not None and name not in self._names):
                raise _Malformed(f"not a tool name: {name!r}")
            call.name = name
            self._announce(call, events)
        elif depth == self._call_level and key == self.fmt.arguments_key:
            call.args_end = end
            call.input = _arguments_object(self._section[call.args_start:end])
        elif depth == self._call_level - 1:
            self._finish_call(call, events)

    def _json_text(self, start: int, end: int) -> str:
        """The section's text between two offsets, with raw control characters in strings escaped: valid JSON."""
        text = self._section[start:end]
        controls = [p + self._json_base for p in self._reader.raw_controls]
        if not any(start <= p < end for p in controls):
            return text
        chars = list(text)
        for p in controls:
            if start <= p < end:
                chars[p - start] = json.dumps(chars[p - start])[1:-1]
        return "".join(chars)

    def _announce(self, call: _Call, events: list[Event]) -> None:
        if self._stream and not call.started:
            call.started = True
            self._emit(ToolCallStart(call.call_id, call.name), events)

    def _track_safe_point(self, position: int) -> None:
        call = self._call
        if (call is not None and call.args_is_object and call.args_end is None and call.args_start is not None
                and self._reader.depth > self._call_level and self._reader.closable):
            call.safe_end = position + 1
            call.safe_closers = self._reader.closers(self._call_level)

    def _send_arguments(self, events: list[Event], up_to: int | None = None) -> None:
        call = self._call
        if not (call is not None and call.started and call.args_is_object):
            return
        end = up_to if up_to is not None else call.safe_end
        if end is None:
            return
        piece = self._json_text(call.args_start + call.consumed, end)
        call.consumed = max(call.consumed, end - call.args_start)
        if piece:
            call.sent += piece
            self._emit(ToolArgsDelta(piece), events)

    def _finish_call(self, call: _Call, events: list[Event]) -> None:
        if call.name is None:
            raise _Malformed("a call without a name")
        if call.args_end is None:
            call.input = {}                # the model left the arguments out: an empty input
        if not call.started:
            call.started = True
            self._emit(ToolCallStart(call.call_id, call.name), events)
        if call.args_is_object:
            self._send_arguments(events, up_to=call.args_end)
        else:                              # stringified or missing arguments: one piece
            call.sent = json.dumps(call.input, ensure_ascii=False)
            self._emit(ToolArgsDelta(call.sent), events)
        self._emit(BlockEnd(), events)
        self.calls.append(ParsedToolCall(call.call_id, call.name, call.input))
        self._call = None

    def _emit(self, event: Event, events: list[Event]) -> None:
        if not self._stream:
            self._section_events.append(event)
            return
        if not self._section_shown:
            self._open_call_blocks(events)
        events.append(event)

    def _open_call_blocks(self, events: list[Event]) -> None:
        # The first call of a section closes the text before it; whitespace between the two is dropped.
        self._section_shown = True
        if self._text_open:
            events.append(BlockEnd())
        self._text_open, self._ws_held, self._after_call = False, "", True

    def _close_section(self, events: list[Event]) -> None:
        if self._section_events:
            self._open_call_blocks(events)
            events.extend(self._section_events)
            self._section_events = []
        self._state = _AFTER_CALL if self.fmt.closing_tag else _TEXT

    def _break_section(self, position: int, rest: str, events: list[Event]) -> str:
        """The call JSON is malformed at `position`. Returns the text to read next."""
        self._state, self._section_events = _TEXT, []
        if not self._section_shown:
            # Nothing of it was shown: it is text, up to and including the character that broke it.
            self._text(self._section[:position + 1], events)
            return rest
        self._close_cut_call(events)
        return self._section[position:position + 1] + rest

    def _end_section_early(self, events: list[Event]) -> None:
        """The output ended inside a call section (the token limit)."""
        if self._section_shown:
            self._close_cut_call(events)
        elif not self._stream:
            self._text(self._section, events)
        else:
            # Streaming (grammar-held output) with no call out yet: a call in the making, never text; dropped,
            # with the whitespace that led up to it.
            self._ws_held = ""
        self._section_events, self._state = [], _TEXT

    def _close_cut_call(self, events: list[Event]) -> None:
        call, self._call = self._call, None
        if call is None or not call.started:
            return                         # a call whose name was not out yet is dropped
        if call.args_is_object and call.safe_end is not None:
            self._call = call
            self._send_arguments(events)
            self._call = None
            closing = call.safe_closers
        else:
            closing = "" if call.sent else "{}"
        if closing:
            call.sent += closing
            events.append(ToolArgsDelta(closing))
        events.append(BlockEnd())
        self.calls.append(ParsedToolCall(call.call_id, call.name, json.loads(call.sent), complete=False))


def _arguments_object(text: str) -> dict:
    """The arguments value; a JSON string holding an object (Mistral-style stringified arguments) counts too."""
    value = json.loads(text, strict=False)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _Malformed("arguments are a string that is not JSON") from None
    if not isinstance(value, dict):
        raise _Malformed("arguments must be a JSON object")
    return value
