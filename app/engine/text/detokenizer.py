"""Generated token ids → text, one token at a time, for one row.

Text is released as soon as a token's text is settled: the only wait is while the decode ends in an incomplete
UTF-8 character (shown as U+FFFD). There is no word-level holding back (the stock streamers wait for a space):
the stop-sequence matcher and the output parser do their own, precise holding back, and a stop sequence has to be
seen on the token that completes it. It also keeps the ids, so the row knows exactly how many tokens it generated
and whether the last one ended the turn.
"""
from __future__ import annotations

from collections.abc import Collection

REPLACEMENT_CHARACTER = "\ufffd"


class Detokenizer:
    """Incremental decode of one row's generated tokens.

    Args:
        tokenizer: the model's tokenizer.
        end_of_turn_ids: ids that end the turn. The first one is counted and decodes to nothing (special tokens
            are skipped); nothing after it is taken.
        shown_special_ids: special tokens that are decoded anyway: a model's thinking markers, when its tokenizer
            registers them as special, must reach the output parser.
    """

    def __init__(self, tokenizer, end_of_turn_ids: Collection[int] = (), shown_special_ids: Collection[int] = ()):
        self.tokenizer = tokenizer
        self.end_of_turn_ids = frozenset(end_of_turn_ids)
        # None: the plain skip_special_tokens decode. Otherwise the ids to leave out by hand, every special one but
        # those to show (a decode option cannot skip only some).
        shown = frozenset(shown_special_ids)
        special = special_token_ids(tokenizer) if shown else frozenset()
        self._hidden_ids = special - shown if special & shown else None
        self.token_ids: list[int] = []       # the output: generated ids up to and including end-of-turn
        self.ended_with_end_of_turn = False
        # text is the decode of token_ids[_prefix_offset:] minus that of token_ids[_prefix_offset:_read_offset];
        # decoding a little context keeps word-initial spaces right.
        self._prefix_offset = 0
        self._read_offset = 0

    @property
    def generated_tokens(self) -> int:
        return len(self.token_ids)

    def push(self, token_id: int) -> str:
        """Take one generated token; returns the text it settles ("" while a character is incomplete)."""
        if self.ended_with_end_of_turn:
            raise ValueError("the turn has ended: no token follows end-of-turn")
        self.token_ids.append(token_id)
        self.ended_with_end_of_turn = token_id in self.end_of_turn_ids
        return self._settled_text()

    def finish(self) -> str:
        """The output is over: whatever is left, even a dangling partial character, is final now."""
        text = self._decode(self._prefix_offset, None)[len(self._decode(self._prefix_offset, self._read_offset)):]
        self._prefix_offset = self._read_offset = len(self.token_ids)
        return text

    def _settled_text(self) -> str:
        before = self._decode(self._prefix_offset, self._read_offset)
        now = self._decode(self._prefix_offset, None)
        if len(now) <= len(before) or now.endswith(REPLACEMENT_CHARACTER):
            return ""                        # nothing new yet, or a multi-byte character still incomplete
        self._prefix_offset, self._read_offset = self._read_offset, len(self.token_ids)
        return now[len(before):]

    def _decode(self, start: int, stop: int | None) -> str:
        if self._hidden_ids is None:
            return self.tokenizer.decode(self.token_ids[start:stop], skip_special_tokens=True)
        shown = [token_id for token_id in self.token_ids[start:stop] if token_id not in self._hidden_ids]
        return self.tokenizer.decode(shown, skip_special_tokens=False)


def special_token_ids(tokenizer) -> frozenset[int]:
    """Every id that `skip_special_tokens=True` leaves out: the named special tokens and added ones marked special."""
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    return frozenset(tokenizer.all_special_ids) | frozenset(i for i, token in added.items() if token.special)
