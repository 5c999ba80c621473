"""A strict, incremental JSON reader that knows, after every character, whether what it has read can be closed.

The tool-call parser streams a call's arguments as they are generated, and every piece it has sent must stay a
valid JSON prefix (Anthropic's SDKs parse the concatenation after each `input_json_delta`). This reader checks the
syntax a character at a time, reports where each value starts and ends (with the object key it belongs to), and
says whether the text so far is *closable*: valid once the open string and containers are closed
(`{"a": [1, "x` + `"]}`). The parser only releases argument text up to the last closable point, so a stream cut
short (max_tokens mid-call) can still be completed into a valid object by appending `closers()`.

Raw control characters inside strings (a tab, \x01) are invalid JSON, yet a grammar built from a user's `pattern`
can let a model write one; the reader accepts them and lists where they are (`raw_controls`), so whoever passes
the text on can escape them.

Not closable, and so held back for a few characters: a key and its colon until the value starts, a comma until the
next element starts, half a literal (`tru`), a number that cannot end yet (`-`, `1.`, `2e`), an escape in progress.
"""
from __future__ import annotations

import json

WHITESPACE = " \t\n\r"
_ESCAPES = set('"\\/bfnrtu')
_HEX = set("0123456789abcdefABCDEF")
_LITERALS = {"t": "true", "f": "false", "n": "null"}
# Number states that may end the number (the rest need more characters).
_NUMBER_ENDS = {"zero", "int", "frac", "exp"}

# Reader states.
VALUE, ARRAY_FIRST, OBJECT_FIRST, OBJECT_KEY, KEY, COLON, AFTER_VALUE = range(7)
STRING, ESCAPE, UNICODE, NUMBER, LITERAL, DONE = range(7, 13)


class JsonSyntaxError(ValueError):
    pass


class JsonReader:
    """Feed it one JSON value (leading whitespace allowed) with `push(char)`.

    `push` returns the value boundaries the character produced, as tuples:
    ("start", depth, key): this character begins a value;
    ("end", depth, key, inclusive): a value ended — with this character if inclusive, else just before it (a
    number ends when the next character arrives).
    depth counts the containers around the value (0 for the root); key is the object key it belongs to (None in
    arrays and at the root). Raises JsonSyntaxError on the first character that cannot continue valid JSON.
    """

    def __init__(self):
        self._stack: list[str] = []            # "{" or "[" for each open container
        self._keys: list[str | None] = []      # per open container: the key being read (objects)
        self._state = VALUE
        self._key_chars: list[str] = []
        self._number = ""                      # number DFA state
        self._literal_rest = ""                # characters a literal still needs
        self._unicode_left = 0
        self._escape_returns_to = STRING
        self.position = 0                      # characters pushed so far
        self.raw_controls: list[int] = []      # positions of raw control characters inside strings and keys

    @property
    def complete(self) -> bool:
        return self._state == DONE

    @property
    def depth(self) -> int:
        return len(self._stack)

    @property
    def closable(self) -> bool:
        """The text read so far plus `closers()` is valid JSON."""
        if self._state == NUMBER:
            return self._number in _NUMBER_ENDS
        return self._state in (AFTER_VALUE, ARRAY_FIRST, OBJECT_FIRST, STRING, DONE)

    def closers(self, from_depth: int = 0) -> str:
        """What closes the open string and the containers opened at depth >= from_depth (only when closable)."""
        tail = "".join("}" if opener == "{" else "]" for opener in reversed(self._stack[from_depth:]))
        return ('"' if self._state == STRING else "") + tail

    def push(self, char: str) -> list[tuple]:
        events: list[tuple] = []
        state = self._state
        self.position += 1
        if state in (STRING, KEY) and char < " ":
            self.raw_controls.append(self.position - 1)
        if state == STRING:
            if char == '"':
                self._end_scalar(events, inclusive=True)
            elif char == "\\":
                self._state, self._escape_returns_to = ESCAPE, STRING
        elif state in (ESCAPE, UNICODE):
            self._escape(char)
        elif state == KEY:
            if char == '"':
                self._keys[-1] = json.loads('"' + "".join(self._key_chars) + '"', strict=False)
                self._state = COLON
            elif char == "\\":
                self._key_chars.append(char)
                self._state, self._escape_returns_to = ESCAPE, KEY
            else:
                self._key_chars.append(char)
        elif state == NUMBER:
            self._number_char(char, events)
        elif state == LITERAL:
            if char != self._literal_rest[0]:
                raise JsonSyntaxError(f"unexpected {char!r} in a literal")
            self._literal_rest = self._literal_rest[1:]
            if not self._literal_rest:
                self._end_scalar(events, inclusive=True)
        elif char in WHITESPACE:
            pass
        elif state in (VALUE, ARRAY_FIRST):
            if state == ARRAY_FIRST and char == "]":
                self._close_container("[", events)
            else:
                self._start_value(char, events)
        elif state in (OBJECT_FIRST, OBJECT_KEY):
            if state == OBJECT_FIRST and char == "}":
                self._close_container("{", events)
            elif char == '"':
                self._key_chars = []
                self._state = KEY
            else:
                raise JsonSyntaxError(f"expected a key, got {char!r}")
        elif state == COLON:
            if char != ":":
                raise JsonSyntaxError(f"expected ':', got {char!r}")
            self._state = VALUE
        elif state == AFTER_VALUE:
            self._after_value(char, events)
        else:
            raise JsonSyntaxError(f"unexpected {char!r} after the end of the value")
        return events

    def _enclosing_key(self) -> str | None:
        return self._keys[-1] if self._stack and self._stack[-1] == "{" else None

    def _start_value(self, char: str, events: list) -> None:
        events.append(("start", len(self._stack), self._enclosing_key()))
        if char in "{[":
            self._stack.append(char)
            self._keys.append(None)
            self._state = OBJECT_FIRST if char == "{" else ARRAY_FIRST
        elif char == '"':
            self._state = STRING
        elif char == "-" or char.isdigit():
            self._state, self._number = NUMBER, ("minus" if char == "-" else "zero" if char == "0" else "int")
        elif char in _LITERALS:
            self._state, self._literal_rest = LITERAL, _LITERALS[char][1:]
        else:
            raise JsonSyntaxError(f"expected a value, got {char!r}")

    def _end_scalar(self, events: list, inclusive: bool) -> None:
        events.append(("end", len(self._stack), self._enclosing_key(), inclusive))
        self._state = AFTER_VALUE if self._stack else DONE

    def _close_container(self, opener: str, events: list) -> None:
        if not self._stack or self._stack[-1] != opener:
            raise JsonSyntaxError("mismatched closing bracket")
        self._stack.pop()
        self._keys.pop()
        self._end_scalar(events, inclusive=True)

    def _after_value(self, char: str, events: list) -> None:
        if char == ",":
            self._state = OBJECT_KEY if self._stack[-1] == "{" else VALUE
        elif char in "}]":
            self._close_container("{" if char == "}" else "[", events)
        else:
            raise JsonSyntaxError(f"expected ',' or a closing bracket, got {char!r}")

    def _escape(self, char: str) -> None:
        if self._escape_returns_to == KEY:
            self._key_chars.append(char)
        if self._state == ESCAPE:
            if char not in _ESCAPES:
                raise JsonSyntaxError(f"invalid escape \\{char}")
            if char == "u":
                self._state, self._unicode_left = UNICODE, 4
            else:
                self._state = self._escape_returns_to
            return
        if char not in _HEX:
            raise JsonSyntaxError("invalid \\u escape")
        self._unicode_left -= 1
        if self._unicode_left == 0:
            self._state = self._escape_returns_to

    def _number_char(self, char: str, events: list) -> None:
        state = self._number
        digit = char.isdigit() and char.isascii()
        if digit and state in ("minus", "int", "dot", "frac", "e", "esign", "exp"):
            self._number = {"minus": "int" if char != "0" else "zero", "dot": "frac", "e": "exp",
                            "esign": "exp"}.get(state, state)
        elif char == "." and state in ("zero", "int"):
            self._number = "dot"
        elif char in "eE" and state in ("zero", "int", "frac"):
            self._number = "e"
        elif char in "+-" and state == "e":
            self._number = "esign"
        elif state in _NUMBER_ENDS:
            # The number ended just before this character, which belongs to what follows it.
            self._end_scalar(events, inclusive=False)
            self.position -= 1             # the same character, read again in the state that follows
            events.extend(self.push(char))
        else:
            raise JsonSyntaxError(f"unexpected {char!r} in a number")
