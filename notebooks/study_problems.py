"""Checkable problems for the budget study (notebooks/budget_study.ipynb): multi-step arithmetic and word problems
with exact integer answers, generated from a seed, with a difficulty knob.

`difficulty` is the number of operations a problem chains (1 to 6) and widens the numbers with it: at 1 it is one
two-digit sum, which a 0.5B model answers at once; from 3 up it chains sums, differences and products of two- and
three-digit numbers, which it cannot do in one step, so any gain from thinking would show there.
"""
from __future__ import annotations

import random
import re

NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana"]
ITEMS = ["apples", "stamps", "marbles", "coins", "books", "shells"]


def arithmetic(rng: random.Random, difficulty: int) -> dict:
    """((a op b) op c) ... with `difficulty` operations, written out in full with parentheses."""
    high = 20 if difficulty <= 1 else 99 if difficulty <= 3 else 199
    value = rng.randint(2, high)
    text = str(value)
    for step in range(difficulty):
        op = rng.choice("+-*") if step else rng.choice("+-")
        operand = rng.randint(2, 12) if op == "*" else rng.randint(2, high)
        value = value + operand if op == "+" else value - operand if op == "-" else value * operand
        text = f"({text} {op} {operand})" if step < difficulty - 1 else f"{text} {op} {operand}"
    return {"kind": "arithmetic", "difficulty": difficulty, "question": f"What is {text}?", "answer": value}


def word_problem(rng: random.Random, difficulty: int) -> dict:
    """A story of `difficulty` steps: someone starts with some items, then buys packs, gives some away, ..."""
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    count = rng.randint(5, 40)
    sentences = [f"{name} has {count} {item}."]
    for _ in range(difficulty):
        move = rng.choice(["buy", "give", "double"] if count < 400 else ["give"])
        if move == "buy":
            packs, size = rng.randint(2, 6), rng.randint(3, 15)
            count += packs * size
            sentences.append(f"{name} buys {packs} packs of {size} {item}.")
        elif move == "give" and count > 2:
            given = rng.randint(1, count - 1)
            count -= given
            sentences.append(f"{name} gives {given} {item} away.")
        else:
            count *= 2
            sentences.append(f"{name} doubles the number of {item}.")
    sentences.append(f"How many {item} does {name} have now?")
    return {"kind": "word", "difficulty": difficulty, "question": " ".join(sentences), "answer": count}


def problems(count: int, seed: int = 0, difficulties: tuple[int, ...] = (1, 2, 3, 4)) -> list[dict]:
    """`count` problems, alternating arithmetic and word problems and cycling through `difficulties`."""
    rng = random.Random(seed)
    made = []
    for index in range(count):
        difficulty = difficulties[index % len(difficulties)]
        maker = arithmetic if (index // len(difficulties)) % 2 == 0 else word_problem
        made.append({"id": index, **maker(rng, difficulty)})
    return made


def last_integer(text: str) -> int | None:
    """The last integer in a text (thousands separators ignored)."""
    numbers = re.findall(r"-?\d+", text.replace(",", ""))
    return int(numbers[-1]) if numbers else None


def _marked(text: str) -> int | None:
    """The integer a text marks as its answer: the last `\\boxed{N}`, else the last "answer is N"."""
    text = text.replace(",", "")
    for pattern in (r"\\boxed\{\s*(-?\d+)\s*\}", r"answer is\W*(-?\d+)"):
        found = re.findall(pattern, text)
        if found:
            return int(found[-1])
    return None


def extracted_answer(answer: str, thinking: str = "") -> int | None:
    """The integer a response answers with. In order: the one the answer text marks (boxed, "the answer is N"),
    the one the thinking marks, the answer text's last integer, the thinking's last integer. A model that wrote
    its result in the thinking and then explained it ("... subtracting from 63") is scored on the result."""
    for found in (_marked(answer), _marked(thinking), last_integer(answer), last_integer(thinking)):
        if found is not None:
            return found
    return None
