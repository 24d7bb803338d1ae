"""Counting: a letter in a word, words in a sentence, vowels, members of a category, numbers with a property."""

from __future__ import annotations

import numpy as np

from textgen_env.tasks.answers import extract_answer, follows_format, numbers_equal, parse_number
from textgen_env.tasks.base import TaskBase, TaskItem
from textgen_env.tasks.vocabulary import CATEGORIES, SENTENCE_WORDS, WORDS

__all__ = ["CountingTask"]

_VOWELS = "aeiou"


class CountingTask(TaskBase):
    """Count things in a short text or list.

    Levels (each asks something new):

    1. how many times a letter occurs in a word (``r`` in ``strawberry``)
    2. how many words a sentence has
    3. how many vowels (a, e, i, o, u) a word has
    4. how many items of a mixed list belong to a category (fruits among fruits, animals, vehicles, colors)
    5. how many numbers of a list are even, odd, or greater than a threshold

    Scoring: ``correct`` when the answer (tag, boxed, Answer: line, else the last number) equals the count;
    ``format`` (plain): the number alone.
    """

    name = "counting"
    difficulties = (1, 2, 3, 4, 5)
    answer_kind = "number"
    phrasings = ("{question}", "Count carefully. {question}", "Question: {question}")

    def _sample(self, rng: np.random.Generator, difficulty: int) -> TaskItem:
        if difficulty == 1:
            word = str(rng.choice(WORDS))
            letter = str(rng.choice(sorted(set(word)))) if rng.random() < 0.85 else str(rng.choice(list("xqz")))
            count = word.count(letter)
            question = f"How many times does the letter '{letter}' appear in the word '{word}'?"
            canonical = f"{letter}|{word}"
        elif difficulty == 2:
            words = [str(w) for w in rng.choice(SENTENCE_WORDS, size=int(rng.integers(3, 11)))]
            count, sentence = len(words), " ".join(words)
            question = f"How many words are in this sentence: '{sentence}'?"
            canonical = sentence
        elif difficulty == 3:
            word = str(rng.choice(WORDS))
            count = sum(letter in _VOWELS for letter in word)
            question = f"How many vowels (a, e, i, o, u) are in the word '{word}'?"
            canonical = word
        elif difficulty == 4:
            category = str(rng.choice(sorted(CATEGORIES)))
            members = [str(x) for x in rng.choice(CATEGORIES[category], size=int(rng.integers(1, 5)), replace=False)]
            others = [x for name, things in sorted(CATEGORIES.items()) if name != category for x in things]
            mixed = members + [str(x) for x in rng.choice(others, size=int(rng.integers(2, 6)), replace=False)]
            mixed = [mixed[i] for i in rng.permutation(len(mixed))]
            count = len(members)
            question = f"How many of these are {category}: {', '.join(mixed)}?"
            canonical = f"{category}|{','.join(mixed)}"
        else:
            numbers = [int(n) for n in rng.integers(1, 100, size=int(rng.integers(5, 9)))]
            rule = ("even", "odd", "greater than")[int(rng.integers(3))]
            threshold = int(rng.integers(20, 80))
            if rule == "even":
                count = sum(n % 2 == 0 for n in numbers)
            elif rule == "odd":
                count = sum(n % 2 == 1 for n in numbers)
            else:
                count = sum(n > threshold for n in numbers)
            what = f"greater than {threshold}" if rule == "greater than" else rule
            question = f"How many of these numbers are {what}: {', '.join(map(str, numbers))}?"
            canonical = f"{what}|{numbers}"
        body, phrasing = self._phrase(rng, question=question)
        return self._item(body, count, difficulty, phrasing, canonical)

    def _score(self, completion: str, item: TaskItem) -> tuple[bool, bool]:
        found = extract_answer(completion, ("tag", "boxed", "answer_line", "last_number"))
        return numbers_equal(found, item.answer), follows_format(
            completion, self.answer_format, lambda text: parse_number(text) is not None
        )
