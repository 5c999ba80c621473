"""The streamer `generate()` feeds: it decodes generated tokens into text and keeps their ids.

Unlike the stock `TextStreamer`, which holds text back until a word ends, this one releases text as soon as a
token's text is settled (it only waits while the decode ends in an incomplete UTF-8 character, shown as U+FFFD):
the stop-sequence matcher and the output parser do their own, precise holding back, and a stop sequence has to be
seen on the token that completes it. It also keeps the generated ids, so the job knows exactly how many tokens it
generated and whether the last one was the end-of-turn token.
"""
from __future__ import annotations

from collections.abc import Callable, Collection

import torch
from transformers import StoppingCriteria, TextIteratorStreamer

REPLACEMENT_CHARACTER = "\ufffd"


class TokenStreamer(TextIteratorStreamer):
    """Decodes the tokens after the prompt, incrementally, and records them.

    Args:
        tokenizer: the model's tokenizer.
        prompt_length: tokens in the prompt; `generate()` passes the prompt first and it is skipped.
        end_of_turn_ids: ids that end the turn. The first one generated is counted and decodes to nothing
            (special tokens are skipped); anything `generate()` produces after it (padding) is ignored.
        on_text: called, in the generating thread, with each settled piece of text. Without it the text goes to
            the inherited queue and the streamer is iterated as a `TextIteratorStreamer`.
        shown_special_ids: special tokens that are decoded anyway: a model's thinking markers, when its tokenizer
            registers them as special, must reach the output parser.
    """

    def __init__(self, tokenizer, prompt_length: int, end_of_turn_ids: Collection[int] = (),
                 on_text: Callable[[str], None] | None = None, timeout: float | None = None,
                 shown_special_ids: Collection[int] = ()):
        super().__init__(tokenizer, skip_prompt=True, timeout=timeout, skip_special_tokens=True)
        self.prompt_length = prompt_length
        self.end_of_turn_ids = frozenset(end_of_turn_ids)
        # None: the plain skip_special_tokens decode. Otherwise the ids to leave out by hand, every special one but
        # those to show (a decode option cannot skip only some).
        shown = frozenset(shown_special_ids)
        special = special_token_ids(tokenizer) if shown else frozenset()
        self._hidden_ids = special - shown if special & shown else None
        self.on_text = on_text
        self.token_ids: list[int] = []       # the output: generated ids up to and including end-of-turn
        self.ended_with_end_of_turn = False
        self._positions_seen = 0             # generated positions consumed, padding after end-of-turn included
        self._positions_announced = 0        # generated positions generate() has put()
        # Incremental detokenization: text is the decode of token_ids[_prefix_offset:] minus that of
        # token_ids[_prefix_offset:_read_offset]; decoding a little context keeps word-initial spaces right.
        self._prefix_offset = 0
        self._read_offset = 0

    @property
    def generated_tokens(self) -> int:
        return len(self.token_ids)

    def put(self, value: torch.Tensor) -> None:
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        ids = value.reshape(-1).tolist()     # [batch=1, new] or [new]
        self._positions_announced += len(ids)
        fresh = self._positions_announced - self._positions_seen
        if fresh > 0:                        # otherwise StreamerCatchUp already consumed these
            self._consume(ids[len(ids) - fresh:])

    def catch_up(self, input_ids: torch.LongTensor) -> None:
        """Consume tokens that `generate()` appended to `input_ids` ([1, seq]) but has not put() yet."""
        self._consume(input_ids[0, self.prompt_length + self._positions_seen:].tolist())

    def end(self) -> None:
        # Whatever is left (even a dangling partial character) is final now.
        text = self._decode(self._prefix_offset, None)[len(self._decode(self._prefix_offset, self._read_offset)):]
        self._read_offset = len(self.token_ids)
        self.next_tokens_are_prompt = True
        self.on_finalized_text(text, stream_end=True)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if self.on_text is None:
            super().on_finalized_text(text, stream_end)
        elif text:
            self.on_text(text)

    def _consume(self, ids: list[int]) -> None:
        self._positions_seen += len(ids)
        fresh = False
        for token_id in ids:
            if self.ended_with_end_of_turn:
                break
            self.token_ids.append(token_id)
            fresh = True
            self.ended_with_end_of_turn = token_id in self.end_of_turn_ids
        if fresh:
            text = self._settled_text()
            if text:
                self.on_finalized_text(text)

    def _settled_text(self) -> str:
        before = self._decode(self._prefix_offset, self._read_offset)
        now = self._decode(self._prefix_offset, None)
        if len(now) <= len(before) or now.endswith(REPLACEMENT_CHARACTER):
            return ""                        # nothing new yet, or a multi-byte character still incomplete
        self._prefix_offset, self._read_offset = self._read_offset, len(self.token_ids)
        return now[len(before):]

    def _decode(self, start: int, stop: int | None) -> str:
        if self._hidden_ids is None:
            return self.tokenizer.decode(self.token_ids[start:stop], **self.decode_kwargs)
        shown = [token_id for token_id in self.token_ids[start:stop] if token_id not in self._hidden_ids]
        return self.tokenizer.decode(shown, skip_special_tokens=False)


def special_token_ids(tokenizer) -> frozenset[int]:
    """Every id that `skip_special_tokens=True` leaves out: the named special tokens and added ones marked special."""
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    return frozenset(tokenizer.all_special_ids) | frozenset(i for i, token in added.items() if token.special)


class StreamerCatchUp(StoppingCriteria):
    """Brings the streamer up to date before any other stopping criterion looks at it. Never stops by itself.

    transformers 5 runs the stopping criteria *before* handing the step's token to the streamer (4.x did the
    reverse). Without this, a stop sequence completed by token N would only be seen after token N+1 had been
    generated. Put it first in the StoppingCriteriaList.
    """

    def __init__(self, streamer: TokenStreamer):
        self.streamer = streamer

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        self.streamer.catch_up(input_ids)
        return torch.zeros((input_ids.shape[0],), dtype=torch.bool, device=input_ids.device)
