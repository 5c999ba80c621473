"""The stop-sequence matcher: incremental, across piece boundaries, never showing any part of a stop sequence."""
from __future__ import annotations

import pytest

from app.engine.text.holdback import undecided_tail_length
from app.engine.text.stop_sequences import StopSequenceMatcher


def feed_all(matcher: StopSequenceMatcher, pieces: list[str]) -> tuple[str, str | None]:
    shown, matched = [], None
    for piece in pieces:
        safe, hit = matcher.feed(piece)
        shown.append(safe)
        matched = matched or hit
    if matched is None:
        shown.append(matcher.flush())
    return "".join(shown), matched


@pytest.mark.parametrize(("text", "markers", "expected"), [
    ("hello", ["STOP"], 0),
    ("hello S", ["STOP"], 1),
    ("hello ST", ["STOP"], 2),
    ("hello STO", ["STOP"], 3),
    ("hello STOP", ["STOP"], 0),       # complete markers are found with find(), not held
    ("ab", ["abc", "b"], 2),
    ("x\n", ["\n\nHuman:"], 1),
    ("", ["STOP"], 0),
])
def test_undecided_tail_length(text, markers, expected):
    assert undecided_tail_length(text, markers) == expected


def test_stop_sequence_split_over_pieces_is_never_shown():
    matcher = StopSequenceMatcher(["STOP"])
    assert matcher.feed("Hello S") == ("Hello ", None)
    assert matcher.feed("T") == ("", None)
    assert matcher.feed("O") == ("", None)
    assert matcher.feed("P and more") == ("", "STOP")
    assert matcher.matched == "STOP"


def test_held_tail_is_released_as_soon_as_it_cannot_match():
    matcher = StopSequenceMatcher(["STOP"])
    assert matcher.feed("go ST") == ("go ", None)
    assert matcher.feed("ART") == ("START", None)


def test_held_tail_keeps_the_part_that_can_still_match():
    matcher = StopSequenceMatcher(["abab"])
    assert matcher.feed("xaba") == ("x", None)       # "aba" could still become "abab"
    assert matcher.feed("a") == ("aba", None)        # "abaa": only the last "a" still could
    assert matcher.feed("bab") == ("", "abab")


def test_text_before_a_match_in_the_same_piece_is_returned():
    assert StopSequenceMatcher(["\n\n"]).feed("one\n\ntwo") == ("one", "\n\n")


def test_match_at_the_very_start():
    matcher = StopSequenceMatcher(["Human:"])
    assert matcher.feed("Hum") == ("", None)
    assert matcher.feed("an: hi") == ("", "Human:")


def test_several_sequences_the_first_completed_wins():
    assert feed_all(StopSequenceMatcher(["END", "STOP"]), ["a S", "TOP b END"]) == ("a ", "STOP")
    # "bc" completes at the 3rd character, "abcd" would only at the 4th.
    assert feed_all(StopSequenceMatcher(["abcd", "bc"]), ["a", "bcd"]) == ("a", "bc")


def test_same_end_prefers_the_longer_sequence():
    assert StopSequenceMatcher(["c", "abc"]).feed("xabc") == ("x", "abc")


def test_flush_returns_the_held_tail_when_output_ends():
    matcher = StopSequenceMatcher(["STOP"])
    assert matcher.feed("the end ST") == ("the end ", None)
    assert matcher.flush() == "ST"
    assert matcher.flush() == ""


def test_everything_after_a_match_is_discarded():
    matcher = StopSequenceMatcher(["X"])
    assert matcher.feed("aXb") == ("a", "X")
    assert matcher.feed("more") == ("", None)
    assert matcher.flush() == ""


def test_no_sequences_passes_everything_through():
    assert feed_all(StopSequenceMatcher([]), ["a", "b"]) == ("ab", None)
    assert feed_all(StopSequenceMatcher([""]), ["a", "b"]) == ("ab", None)


def test_special_characters_are_matched_literally():
    assert feed_all(StopSequenceMatcher([".*"]), ["a.", "*b"]) == ("a", ".*")
    assert feed_all(StopSequenceMatcher(["/test;"]), ["/test", " "]) == ("/test ", None)
