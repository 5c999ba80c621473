"""The closing marker of a thinking section, in tokens: the sequences a budget forces, and how a close is seen.

Native markers (Qwen3's `</think>`) are one token; a prompted model spells `</think>` as plain text, several tokens
("</", "think", ">" for SmolLM2). Everything here is worked out from the tokenizer once per request. No torch.
"""
from __future__ import annotations

from dataclasses import dataclass

# What follows the closing marker before the answer, as Qwen3 and DeepSeek-R1 write it ("</think>\n\n").
ANSWER_SEPARATOR = "\n\n"
# s1's budget forcing appends "Wait" where the model tried to stop thinking; on a line of its own it reads as the
# start of a new thought rather than the end of the old sentence.
WAIT_CONTINUATION = "\nWait"


@dataclass(frozen=True)
class ClosingSequence:
    """Token ids forced one by one to end a thinking section: [transition] "\\n" close "\\n\\n".

    `thinking_length` is how many of them belong to the thinking section: those up to and including the last token
    of the closing marker. The separator after it is the answer's first tokens.
    """
    token_ids: tuple[int, ...]
    thinking_length: int


def closing_sequences(tokenizer, close_marker: str, transition: str) -> list[ClosingSequence]:
    """Every way to close, longest first: with the transition, then just a line break, then the bare marker.

    Each is tokenized as one text, so the model sees the spelling its tokenizer would give (what a re-rendered
    prompt holds in the next turn), not a concatenation of separately tokenized parts.
    """
    heads = []
    if transition:
        heads.append(transition + ("" if transition.endswith("\n") else "\n") + close_marker)
    heads += ["\n" + close_marker, close_marker]
    sequences = []
    for head in dict.fromkeys(heads):    # distinct, order kept
        ids = tuple(tokenizer.encode(head + ANSWER_SEPARATOR, add_special_tokens=False))
        sequences.append(ClosingSequence(ids, _tokens_through_marker(tokenizer, ids, close_marker)))
    return sequences


def closing_sequence_within(tokenizer, close_marker: str, transition: str, budget: int) -> ClosingSequence | None:
    """The longest closing sequence whose thinking part fits in `budget` tokens, or None if not even the bare marker
    does (the prompt then closes the section before the model starts: see `prompt.render_prompt`)."""
    for sequence in closing_sequences(tokenizer, close_marker, transition):
        if sequence.thinking_length <= budget:
            return sequence
    return None


def minimum_thinking_budget(tokenizer, close_marker: str) -> int:
    """The smallest budget that can hold the closing marker: 1 for a native marker, 3 for SmolLM2's "</think>"."""
    return closing_sequences(tokenizer, close_marker, "")[-1].thinking_length


def _tokens_through_marker(tokenizer, ids: tuple[int, ...], close_marker: str) -> int:
    # Decoding prefixes finds where the marker completes even when a token straddles its end (">\n\n" merged).
    for length in range(1, len(ids) + 1):
        if close_marker in tokenizer.decode(ids[:length], skip_special_tokens=False):
            return length
    raise ValueError(f"the tokenizer does not reproduce {close_marker!r} when decoding it")


@dataclass(frozen=True)
class CloseMarkerTokens:
    """How to see, token by token, that the model closed its thinking.

    Attributes:
        text: the marker.
        single_id: its id when the tokenizer has it as one token (a native marker); None for plain text.
        start_ids: the tokens a model starts writing the marker with ("</" or " </" for SmolLM2, the marker itself
            when native): suppressing them, with end-of-turn, is how a minimum thinking length is enforced.
        window: generated tokens to decode to see a text marker however it is split (each token is at least one
            of its characters).
    """
    text: str
    single_id: int | None
    start_ids: frozenset[int]
    window: int


def close_marker_tokens(tokenizer, close_marker: str) -> CloseMarkerTokens:
    start_ids = set()
    for spelling in (close_marker, " " + close_marker, "\n" + close_marker):
        for token_id in tokenizer.encode(spelling, add_special_tokens=False):
            piece = tokenizer.decode([token_id], skip_special_tokens=False).strip()
            if piece:                    # the first token that is not just whitespace
                if close_marker.startswith(piece):
                    start_ids.add(token_id)
                break
    return CloseMarkerTokens(close_marker, single_token_id(tokenizer, close_marker), frozenset(start_ids),
                             window=len(close_marker))


def single_token_id(tokenizer, text: str) -> int | None:
    """The id of `text` if the tokenizer spells it as one token, else None."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


def wait_continuation_ids(tokenizer, text: str = WAIT_CONTINUATION) -> tuple[int, ...]:
    return tuple(tokenizer.encode(text, add_special_tokens=False))
