"""Countdown: combine the given numbers with arithmetic to reach a target; every valid expression is accepted."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import numpy as np

from textgen_env.tasks.answers import extract_answer, follows_format, parse_number
from textgen_env.tasks.base import TaskBase, TaskItem
from textgen_env.tasks.expressions import evaluate, numbers_in

__all__ = ["CountdownTask", "countdown_solution_ok"]

# per level: how many numbers, their range, the operations, whether every number must be used
_LEVELS: dict[int, tuple[int, tuple[int, int], str, bool]] = {
    1: (2, (1, 20), "+-", True),
    2: (3, (1, 12), "+-*", False),
    3: (4, (1, 12), "+-*/", False),
    4: (4, (1, 12), "+-*/", True),
    5: (5, (1, 25), "+-*/", False),
}
_OPERATION_NAMES = {"+-": "+ and -", "+-*": "+, - and *", "+-*/": "+, -, * and /"}


def _random_expression(rng: np.random.Generator, numbers: list[int], operations: str) -> tuple[str, Fraction] | None:
    """Combine `numbers` (in a random order) into one expression by random operations; None if a step fails."""
    terms: list[tuple[str, Fraction]] = [(str(n), Fraction(n)) for n in rng.permutation(numbers).tolist()]
    while len(terms) > 1:
        i, j = (int(x) for x in rng.choice(len(terms), size=2, replace=False))
        (left, a), (right, b) = terms[i], terms[j]
        operation = operations[int(rng.integers(len(operations)))]
        if operation == "-" and a < b:
            (left, a), (right, b) = (right, b), (left, a)
        if operation == "/" and (b == 0 or (a / b).denominator != 1 or b == 1):
            return None
        value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else a}[operation]
        terms = [t for k, t in enumerate(terms) if k not in (i, j)]
        terms.append((f"({left} {operation} {right})", value))
    text, value = terms[0]
    return (text[1:-1] if text.startswith("(") else text), value


def _candidate(completion: str) -> str | None:
    """The expression a completion gives: a tag/boxed/Answer: line, else its last non-empty line; '= N' cut off."""
    found = extract_answer(completion, ("tag", "boxed", "answer_line"))
    if found is None:
        lines = [line.strip() for line in completion.strip().splitlines() if line.strip()]
        found = lines[-1] if lines else None
    if found is None:
        return None
    found = found.strip().rstrip(".").strip()
    parts = found.split("=")
    if len(parts) > 1 and parse_number(parts[-1]) is not None:
        found = "=".join(parts[:-1])
    return found.strip().strip("$").strip()


def countdown_solution_ok(expression: str, numbers: list[int], target: int, *, use_all: bool) -> bool:
    """Whether `expression` is a safe arithmetic expression equal to `target` that uses integers from `numbers`
    (each at most as often as given; all of them, each once, with `use_all`)."""
    try:
        value = evaluate(expression)
        used = numbers_in(expression)
    except ValueError:
        return False
    if any(number.denominator != 1 for number in used):
        return False
    used_counts, given_counts = Counter(int(n) for n in used), Counter(numbers)
    if use_all and used_counts != given_counts:
        return False
    return all(used_counts[n] <= given_counts[n] for n in used_counts) and value == target


class CountdownTask(TaskBase):
    """Reach a target number by combining given numbers with arithmetic.

    Levels (each asks something new):

    1. two numbers, + and -, use both (``Using 7 and 12, make 19``)
    2. three numbers, + - *, use any of them at most once
    3. four numbers, + - * /, at most once each
    4. four numbers, + - * /, every number exactly once
    5. five numbers up to 25, + - * /, at most once each (larger targets)

    Scoring: ``correct`` when the answer (tag, boxed, Answer: line, else the last line; a trailing ``= target`` is
    allowed) is an arithmetic expression, evaluated safely (`textgen_env.tasks.expressions`, never ``eval``), that
    equals the target and uses the given numbers as the level requires. Every valid expression counts, not only the
    reference one. ``format`` (plain): the completion is one line holding an expression.
    """

    name = "countdown"
    difficulties = (1, 2, 3, 4, 5)
    answer_kind = "expression"
    phrasings = (
        "Using the numbers {numbers}, make {target}. {rules}",
        "Reach the target {target} with the numbers {numbers}. {rules}",
        "Countdown: numbers {numbers}, target {target}. {rules}",
        "Write an expression that equals {target} using {numbers}. {rules}",
    )

    def _sample(self, rng: np.random.Generator, difficulty: int) -> TaskItem:
        count, (low, high), operations, use_all = _LEVELS[difficulty]
        while True:
            numbers = [int(n) for n in rng.integers(low, high + 1, size=count)]
            chosen = numbers if use_all else [n for n in numbers if rng.random() < 0.75] or numbers[:2]
            if len(chosen) < 2:
                chosen = numbers[:2]
            built = _random_expression(rng, chosen, operations)
            if built is not None and built[1] > 0 and built[1].denominator == 1 and built[1] not in numbers:
                expression, value = built
                break
        target = int(value)
        once = "every number exactly once" if use_all else "each number at most once"
        rules = f"Allowed: {_OPERATION_NAMES[operations]} and parentheses; use {once}."
        shown = ", ".join(str(n) for n in numbers)
        body, phrasing = self._phrase(rng, numbers=shown, target=target, rules=rules)
        canonical = f"{sorted(numbers)}->{target}"  # one side of the split whatever the level's rules
        return self._item(
            body, expression, difficulty, phrasing, canonical, numbers=numbers, target=target, use_all=use_all
        )

    def _score(self, completion: str, item: TaskItem) -> tuple[bool, bool]:
        numbers, target, use_all = list(item.metadata["numbers"]), item.metadata["target"], item.metadata["use_all"]
        found = _candidate(completion)
        correct = found is not None and countdown_solution_ok(found, numbers, target, use_all=use_all)

        def one_expression(text: str) -> bool:
            expression = _candidate(text)
            try:
                return expression is not None and bool(numbers_in(expression))
            except ValueError:
                return False

        return correct, follows_format(completion, self.answer_format, one_expression)
