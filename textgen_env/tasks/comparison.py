"""Comparisons: the larger or smallest number, decimals and fractions that mislead, and yes/no inequalities."""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np

from textgen_env.tasks.answers import extract_answer, follows_format, normalize_text, numbers_equal, parse_number
from textgen_env.tasks.base import TaskBase, TaskItem

__all__ = ["ComparisonTask"]

_YES, _NO = ("yes", "true", "correct"), ("no", "false", "incorrect")
_NUMBERS = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:/\d+)?")


def _yes_no(text: str | None) -> str | None:
    """``"yes"`` or ``"no"`` for an answer that is one of those words (or true/false), else None."""
    if text is None:
        return None
    word = normalize_text(text).casefold()
    return "yes" if word in _YES else "no" if word in _NO else None


class ComparisonTask(TaskBase):
    """Compare numbers.

    Levels (each asks something new):

    1. the larger of two integers
    2. the smallest of four integers, negatives included
    3. the larger of two decimals whose digit counts mislead (``9.9`` vs ``9.11``)
    4. the larger of two fractions (any equal value counts: ``3/4``, ``6/8`` or ``0.75``)
    5. yes or no: is an arithmetic inequality true (``Is 7 * 8 greater than 50?``); true/false also count

    Scoring: levels 1-4 as numbers: a tag, boxed or Answer: line answer must equal the value; without one, the
    completion must name exactly one of the options, the right one (so restating "39 or 725" is not an answer).
    Level 5: the word (tag, boxed, Answer: line, else the whole completion). ``format`` (plain): the number or word
    alone.
    """

    name = "comparison"
    difficulties = (1, 2, 3, 4, 5)
    answer_kind = "number"
    phrasings = ("{question}", "Compare carefully. {question}", "Question: {question}")

    def _sample(self, rng: np.random.Generator, difficulty: int) -> TaskItem:
        kind = "number"
        answer: int | str
        if difficulty == 1:
            a, b = (int(x) for x in rng.choice(np.arange(1, 1000), size=2, replace=False))
            answer, question, canonical = max(a, b), f"Which is larger, {a} or {b}?", f"{a},{b}"
            options = [str(a), str(b)]
        elif difficulty == 2:
            values = [int(x) for x in rng.choice(np.arange(-99, 100), size=4, replace=False)]
            shown = ", ".join(map(str, values))
            answer, question, canonical = min(values), f"Which is the smallest of {shown}?", shown
            options = [str(v) for v in values]
        elif difficulty == 3:
            whole = int(rng.integers(0, 20))
            short = f"{whole}.{int(rng.integers(1, 10))}"
            long = f"{whole}.{int(rng.integers(10, 100))}"
            first, second = (short, long) if rng.random() < 0.5 else (long, short)
            answer = first if Fraction(first) > Fraction(second) else second
            question, canonical = f"Which number is larger: {first} or {second}?", f"{first},{second}"
            options = [first, second]
        elif difficulty == 4:
            while True:
                n1, d1, n2, d2 = (int(x) for x in rng.integers(1, 13, size=4))
                f1, f2 = Fraction(n1, max(d1, n1 + 1)), Fraction(n2, max(d2, n2 + 1))
                if f1 != f2:
                    break
            first, second = f"{f1.numerator}/{f1.denominator}", f"{f2.numerator}/{f2.denominator}"
            answer = first if f1 > f2 else second
            question, canonical = f"Which fraction is larger, {first} or {second}?", f"{first},{second}"
            options = [first, second]
        else:
            x, y = (int(v) for v in rng.integers(2, 13, size=2))
            threshold = x * y + int(rng.integers(-6, 7))
            relation = ("greater than", "less than")[int(rng.integers(2))]
            truth = x * y > threshold if relation == "greater than" else x * y < threshold
            answer, kind = ("yes" if truth else "no"), "yesno"
            question, canonical = f"Is {x} * {y} {relation} {threshold}?", f"{x}*{y} {relation} {threshold}"
            options = ["yes", "no"]
        body, phrasing = self._phrase(rng, question=question)
        return self._item(body, answer, difficulty, phrasing, canonical, kind=kind, answer_kind=kind, options=options)

    def _score(self, completion: str, item: TaskItem) -> tuple[bool, bool]:
        if item.metadata["answer_kind"] == "yesno":
            found = extract_answer(completion, ("tag", "boxed", "answer_line", "whole"))
            return _yes_no(found) == item.answer, follows_format(
                completion, self.answer_format, lambda text: _yes_no(text) is not None
            )
        formatted = follows_format(completion, self.answer_format, lambda text: parse_number(text) is not None)
        found = extract_answer(completion, ("tag", "boxed", "answer_line"))
        if found is not None:
            return numbers_equal(found, item.answer), formatted
        # no marked answer: the completion must name exactly one of the options (restating "39 or 725" names both)
        options = {parse_number(option) for option in item.metadata["options"]}
        named = {parse_number(number) for number in _NUMBERS.findall(completion)} & options
        return named == {parse_number(item.answer)}, formatted
