"""Sorting: order numbers or words; the last level accepts every order consistent with the key (ties)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from textgen_env.tasks.answers import extract_answer, follows_format, normalize_text, parse_number
from textgen_env.tasks.base import TaskBase, TaskItem
from textgen_env.tasks.vocabulary import WORDS

__all__ = ["SortingTask", "parse_list"]


def parse_list(text: str | None) -> list[str] | None:
    """The items of a list answer: brackets dropped, split on commas (else on whitespace), items trimmed."""
    if text is None:
        return None
    body = normalize_text(text).strip("[](){}")
    parts = body.split(",") if "," in body else body.split()
    items = [normalize_text(part) for part in parts]
    return items if items and all(items) else None


def _numbers(items: list[str] | None) -> list[Fraction] | None:
    if items is None:
        return None
    values = [parse_number(item) for item in items]
    return None if any(v is None for v in values) else values  # type: ignore[return-value]  # None excluded above


def _show(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class SortingTask(TaskBase):
    """Sort a list.

    Levels (each asks something new):

    1. four positive integers, smallest first
    2. five integers, largest first
    3. five words, alphabetical order
    4. six numbers with negatives and decimals, smallest first
    5. five words by length, shortest first: words of equal length may come in any order (all such answers count)

    Scoring: the list (tag, boxed, Answer: line, else the whole completion; commas or spaces between items,
    brackets allowed) must hold exactly the given items in a valid order; numbers compare by value, words
    ignoring case. ``format`` (plain): the completion is one line that reads as a list of as many single items.
    """

    name = "sorting"
    difficulties = (1, 2, 3, 4, 5)
    answer_kind = "list"
    phrasings = (
        "Sort {order}: {items}.",
        "Put these in order, {order}: {items}.",
        "Arrange the following {order}: {items}.",
        "Here is a list: {items}. Write it sorted {order}.",
    )

    def _sample(self, rng: np.random.Generator, difficulty: int) -> TaskItem:
        if difficulty in (1, 2, 4):
            if difficulty == 1:
                values = [float(v) for v in rng.choice(np.arange(1, 100), size=4, replace=False)]
            elif difficulty == 2:
                values = [float(v) for v in rng.choice(np.arange(-50, 200), size=5, replace=False)]
            else:
                whole = rng.choice(np.arange(-200, 200), size=6, replace=False)
                values = [float(v) / 10 if i % 2 else float(v) for i, v in enumerate(whole)]
                values = list(dict.fromkeys(values))
            items = [_show(v) for v in values]
            descending = difficulty == 2
            answer = [_show(v) for v in sorted(values, reverse=descending)]
            order = "from largest to smallest" if descending else "from smallest to largest"
            kind = "numbers"
        else:
            items = [str(w) for w in rng.choice(WORDS, size=5, replace=False)]
            if difficulty == 3:
                answer, order = sorted(items), "in alphabetical order"
            else:
                answer, order = sorted(items, key=len), "by length, shortest word first"
            kind = "words"
        body, phrasing = self._phrase(rng, order=order, items=", ".join(items))
        canonical = f"{difficulty}|{','.join(items)}"
        return self._item(body, ", ".join(answer), difficulty, phrasing, canonical, items=items, kind_of_items=kind)

    def _score(self, completion: str, item: TaskItem) -> tuple[bool, bool]:
        given = parse_list(extract_answer(completion, ("tag", "boxed", "answer_line", "whole")))
        reference = item.answer.split(", ")
        correct = False
        if given is not None and len(given) == len(reference):
            if item.metadata["kind_of_items"] == "numbers":
                correct = _numbers(given) == _numbers(reference)
            elif item.difficulty == 5:
                words = [w.casefold() for w in given]
                same_words = sorted(words) == sorted(w.casefold() for w in reference)
                correct = same_words and [len(w) for w in words] == sorted(len(w) for w in words)
            else:
                correct = [w.casefold() for w in given] == [w.casefold() for w in reference]
        count = len(reference)

        def a_list(text: str) -> bool:
            items = parse_list(text)
            return items is not None and len(items) == count and not any(" " in part for part in items)

        return correct, follows_format(completion, self.answer_format, a_list)
