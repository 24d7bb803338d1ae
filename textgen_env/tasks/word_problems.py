"""Templated word problems: one to three steps of adding, taking away, multiplying, paying and sharing."""

from __future__ import annotations

import numpy as np

from textgen_env.tasks.answers import extract_answer, follows_format, numbers_equal, parse_number
from textgen_env.tasks.base import TaskBase, TaskItem
from textgen_env.tasks.vocabulary import CATEGORIES, NAMES

__all__ = ["WordProblemTask"]

_THINGS = ("marbles", "stickers", "pencils", "cookies", "stamps", "shells", "cards", "books")


class WordProblemTask(TaskBase):
    """Short stories with a numeric question.

    Levels (each asks something new):

    1. one addition (has some, gets more)
    2. two steps: gets more, then gives some away
    3. multiplication then subtraction (packs of several, some used)
    4. money: the cost of several items and the change from a bill
    5. sharing: how many each gets when shared equally, with the rest set aside (division with a remainder)

    Phrasings: the story is templated with names, things and numbers; the closing question has several wordings.
    Scoring: ``correct`` when the answer (tag, boxed, Answer: line, else the last number) equals the result;
    ``format`` (plain): the number alone.
    """

    name = "word_problems"
    difficulties = (1, 2, 3, 4, 5)
    answer_kind = "number"
    phrasings = ("{story} {ask}", "Read the problem. {story} {ask}", "{story} Question: {ask}")

    def _sample(self, rng: np.random.Generator, difficulty: int) -> TaskItem:
        name, pronoun = NAMES[int(rng.integers(len(NAMES)))]
        things = str(rng.choice(_THINGS))
        owned = f"How many {things} does {name} have now?", f"How many {things} does {name} end up with?"
        if difficulty == 1:
            a, b = (int(x) for x in rng.integers(2, 30, size=2))
            story = f"{name} has {a} {things}. {pronoun} gets {b} more."
            answer, asks = a + b, owned
        elif difficulty == 2:
            a, b = (int(x) for x in rng.integers(5, 40, size=2))
            c = int(rng.integers(1, a + b))
            story = f"{name} has {a} {things}. {pronoun} buys {b} more and then gives {c} to a friend."
            answer, asks = a + b - c, owned
        elif difficulty == 3:
            packs, each = int(rng.integers(2, 10)), int(rng.integers(3, 13))
            used = int(rng.integers(1, packs * each))
            story = (
                f"{name} buys {packs} packs of {things} with {each} {things} in each pack. "
                f"{pronoun} uses {used} of them."
            )
            answer = packs * each - used
            asks = (f"How many {things} are left?", f"How many {things} does {name} still have?")
        elif difficulty == 4:
            fruit = str(rng.choice(CATEGORIES["fruits"]))
            count, price = int(rng.integers(2, 9)), int(rng.integers(1, 8))
            bill = next(b for b in (10, 20, 50, 100) if b >= count * price)
            article = "An" if fruit[0] in "aeiou" else "A"
            story = (
                f"{article} {fruit} costs {price} dollars. "
                f"{name} buys {count} of them and pays with a {bill}-dollar bill."
            )
            answer = bill - count * price
            asks = (f"How much change, in dollars, does {name} get back?", "How many dollars of change are given?")
        else:
            friends = int(rng.integers(2, 7))
            each, left = int(rng.integers(2, 12)), int(rng.integers(0, friends))
            total = friends * each + left
            story = (
                f"{name} shares {total} {things} equally among {friends} friends, giving each the same number and "
                f"keeping the {things} that are left over."
            )
            answer = each
            asks = (f"How many {things} does each friend get?", f"How many {things} go to each friend?")
        ask = asks[int(rng.integers(len(asks)))]
        body, phrasing = self._phrase(rng, story=story, ask=ask)
        canonical = f"{difficulty}|{story}"
        return self._item(body, answer, difficulty, phrasing, canonical)

    def _score(self, completion: str, item: TaskItem) -> tuple[bool, bool]:
        found = extract_answer(completion, ("tag", "boxed", "answer_line", "last_number"))
        return numbers_equal(found, item.answer), follows_format(
            completion, self.answer_format, lambda text: parse_number(text) is not None
        )
