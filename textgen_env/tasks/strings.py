"""String transformations: reverse a word, make an acronym, reverse word order, sort letters, shift letters."""

from __future__ import annotations

import numpy as np

from textgen_env.tasks.answers import extract_answer, follows_format, normalize_text
from textgen_env.tasks.base import TaskBase, TaskItem
from textgen_env.tasks.vocabulary import SENTENCE_WORDS, WORDS

__all__ = ["StringTask"]

_QUESTIONS = {
    1: ("Reverse the letters of the word '{text}'.", "Spell '{text}' backwards."),
    2: ("Write the first letter of each word of '{text}' as one uppercase word.", "Make an acronym of '{text}'."),
    3: ("Reverse the order of the words in '{text}'.", "Write the words of '{text}' in reverse order."),
    4: ("Write the letters of '{text}' in alphabetical order.", "Sort the letters of '{text}' alphabetically."),
    5: (
        "Shift every letter of '{text}' forward by {shift} in the alphabet (z wraps to a).",
        "Apply a Caesar shift of {shift} to '{text}' (each letter moves {shift} forward, z wraps to a).",
    ),
}


def _shift(word: str, shift: int) -> str:
    return "".join(chr((ord(c) - ord("a") + shift) % 26 + ord("a")) for c in word)


class StringTask(TaskBase):
    """Transform a word or a short sentence.

    Levels (each asks something new):

    1. reverse a word (``apple`` -> ``elppa``)
    2. the acronym of a sentence (``the cat sat`` -> ``TCS``)
    3. reverse the order of the words of a sentence
    4. the letters of a word in alphabetical order (``lemon`` -> ``elmno``)
    5. a Caesar shift of 1 to 3 letters (``cat`` shifted by 1 -> ``dbu``)

    Phrasings: two wordings per level, and the answer instruction. Scoring: the answer (tag, boxed, Answer: line,
    else the whole completion) equals the result ignoring case, surrounding quotes and trailing punctuation.
    ``format`` (plain): the completion is one line of as many words as the result (one, except for level 3).
    """

    name = "strings"
    difficulties = (1, 2, 3, 4, 5)
    answer_kind = "text"
    phrasings = ("{question}", "Task: {question}", "{question} Be careful with every letter.")

    def _sample(self, rng: np.random.Generator, difficulty: int) -> TaskItem:
        shift = int(rng.integers(1, 4))
        if difficulty in (2, 3):
            text = " ".join(str(w) for w in rng.choice(SENTENCE_WORDS, size=int(rng.integers(3, 6)), replace=False))
        else:
            text = str(rng.choice(WORDS))
        answer = {
            1: text[::-1],
            2: "".join(word[0] for word in text.split()).upper(),
            3: " ".join(text.split()[::-1]),
            4: "".join(sorted(text)),
            5: _shift(text, shift),
        }[difficulty]
        wordings = _QUESTIONS[difficulty]
        question = wordings[int(rng.integers(len(wordings)))].format(text=text, shift=shift)
        body, phrasing = self._phrase(rng, question=question)
        canonical = f"{difficulty}|{text}|{shift if difficulty == 5 else ''}"
        return self._item(body, answer, difficulty, phrasing, canonical, text=text)

    def _score(self, completion: str, item: TaskItem) -> tuple[bool, bool]:
        found = extract_answer(completion, ("tag", "boxed", "answer_line", "whole"))
        correct = found is not None and normalize_text(found).casefold() == item.answer.casefold()
        words = len(item.answer.split())
        return correct, follows_format(
            completion, self.answer_format, lambda text: len(normalize_text(text).split()) == words
        )
