"""Arithmetic: from adding two digits up to four-term expressions with precedence, parentheses and negatives."""

from __future__ import annotations

import numpy as np

from textgen_env.tasks.answers import extract_answer, follows_format, numbers_equal, parse_number
from textgen_env.tasks.base import TaskBase, TaskItem
from textgen_env.tasks.expressions import evaluate

__all__ = ["ArithmeticTask"]

_WORDS = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}


def _digits(rng: np.random.Generator, digits: int, *, low: int | None = None) -> int:
    start = 10 ** (digits - 1) if low is None else low
    return int(rng.integers(start, 10**digits))


def _expression(rng: np.random.Generator, difficulty: int) -> str:
    """A random expression whose operations, terms and number sizes depend on `difficulty` (see the task doc)."""
    if difficulty == 1:
        return f"{_digits(rng, 1, low=0)} + {_digits(rng, 1, low=0)}"
    if difficulty == 2:
        a, b = _digits(rng, 2), _digits(rng, 2)
        return f"{max(a, b)} - {min(a, b)}" if rng.random() < 0.5 else f"{a} + {b}"
    if difficulty == 3:
        return f"{_digits(rng, 1, low=2)} * {_digits(rng, int(rng.integers(1, 3)), low=2)}"
    if difficulty == 4:
        first, second = ("+", "-")[int(rng.integers(2))], ("+", "-")[int(rng.integers(2))]
        return f"{_digits(rng, 2)} {first} {_digits(rng, 2)} {second} {_digits(rng, 2)}"
    if difficulty == 5:
        a, b, c = _digits(rng, 2), _digits(rng, 1, low=2), _digits(rng, 1, low=2)
        return f"{a} + {b} * {c}" if rng.random() < 0.5 else f"{b} * {c} - {a}"
    if difficulty == 6:
        divisor, quotient = _digits(rng, 1, low=2), _digits(rng, 1, low=2)
        a, b = _digits(rng, 1, low=1), _digits(rng, 1, low=1)
        if rng.random() < 0.5:
            return f"{divisor * quotient} / {divisor}"
        return f"({a} + {b}) * {divisor}"
    # 7: four terms, all operations, negative numbers in the question
    a, b, c, d = (_digits(rng, int(rng.integers(1, 3)), low=1) for _ in range(4))
    sign = "-" if rng.random() < 0.5 else ""
    return f"{sign}{a} * ({b} - {c}) + {d}" if rng.random() < 0.5 else f"({sign}{a} - {b}) * {c} - {d}"


class ArithmeticTask(TaskBase):
    """Arithmetic questions with a numeric answer.

    Levels (each asks something new):

    1. add two single-digit numbers (``3 + 4``)
    2. add or subtract two-digit numbers (``57 - 23``)
    3. multiply (``7 * 12``)
    4. three terms of + and -, the result may be negative (``41 - 87 + 15``)
    5. precedence: a product inside a sum or difference (``12 + 3 * 7``)
    6. exact division or parentheses (``56 / 8``, ``(3 + 5) * 4``)
    7. four terms with parentheses and negative numbers (``-7 * (12 - 15) + 4``)

    Phrasings: "What is ...?", "Compute ...", "Calculate 3 plus 4." (in words where one operation), and more.
    Scoring: ``correct`` when the answer (tag, boxed, Answer: line, else the last number) equals the value exactly;
    ``format`` when the completion follows the answer format (``plain``: the number alone).
    """

    name = "arithmetic"
    difficulties = (1, 2, 3, 4, 5, 6, 7)
    answer_kind = "number"
    phrasings = (
        "What is {expression}?",
        "Compute {expression}.",
        "Calculate {spoken}.",
        "{expression} = ?",
        "Work out the value of {spoken}.",
        "Evaluate the expression {expression}.",
        "Compute {spoken}.",
    )

    def _sample(self, rng: np.random.Generator, difficulty: int) -> TaskItem:
        expression = _expression(rng, difficulty)
        value = evaluate(expression)
        assert value.denominator == 1, f"every level has an integer answer; {expression!r} = {value}"
        tokens = expression.split()
        spoken = expression
        if len(tokens) == 3 and "(" not in expression:
            spoken = f"{tokens[0]} {_WORDS[tokens[1]]} {tokens[2]}"
        body, phrasing = self._phrase(rng, expression=expression, spoken=spoken)
        return self._item(body, value.numerator, difficulty, phrasing, expression, expression=expression)

    def _score(self, completion: str, item: TaskItem) -> tuple[bool, bool]:
        found = extract_answer(completion, ("tag", "boxed", "answer_line", "last_number"))
        return numbers_equal(found, item.answer), follows_format(
            completion, self.answer_format, lambda text: parse_number(text) is not None
        )
