"""Countdown: items are solvable, every valid expression counts, number-use rules and the target are enforced."""

from __future__ import annotations

import numpy as np
import pytest

from textgen_env.tasks import make_task
from textgen_env.tasks.countdown import countdown_solution_ok


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5])
def test_the_reference_solves_the_item_with_the_levels_rules(level):
    task = make_task("countdown")
    rng = np.random.default_rng(level)
    for _ in range(50):
        item = task.sample(rng, level)
        numbers, target = item.metadata["numbers"], item.metadata["target"]
        assert countdown_solution_ok(item.answer, numbers, target, use_all=item.metadata["use_all"])
        assert str(target) in item.question and all(str(n) in item.question for n in numbers)
        assert target not in numbers


def test_levels_differ_in_what_is_asked():
    task = make_task("countdown")
    rng = np.random.default_rng(0)
    first, fourth = task.sample(rng, 1), task.sample(rng, 4)
    assert len(first.metadata["numbers"]) == 2 and "/" not in first.question and "*" not in first.question
    assert len(fourth.metadata["numbers"]) == 4 and fourth.metadata["use_all"] and "exactly once" in fourth.question


def test_any_valid_expression_is_accepted_not_only_the_reference():
    assert countdown_solution_ok("3 * 4 - 2", [2, 3, 4], 10, use_all=True)
    assert countdown_solution_ok("(4 - 2) * 3 + 4", [2, 3, 4, 4], 10, use_all=True)
    assert countdown_solution_ok("2 * 4 + 2", [2, 2, 4], 10, use_all=True)
    assert countdown_solution_ok("4 + 3 * 2", [2, 3, 4, 9], 10, use_all=False)


@pytest.mark.parametrize(
    "expression, numbers, use_all",
    [
        ("3 * 4 - 2", [2, 3, 4], False),
        ("5 + 5", [5, 3], False),
        ("4 + 6", [4, 6, 1], True),
        ("20 / 2", [20, 2], True),
        ("12.5 - 2.5", [12, 2], False),
        ("import os", [1], False),
        ("10", [10], False),
    ],
    ids=["wrong-target", "number-reused", "not-all-used", "not-the-target", "decimals", "code", "target-alone"],
)
def test_invalid_expressions_are_rejected(expression, numbers, use_all):
    target = 9 if expression == "10" else 11
    assert not countdown_solution_ok(expression, numbers, target, use_all=use_all)


def test_completions_are_read_from_a_tag_an_equation_or_the_last_line():
    task = make_task("countdown")
    item = task.sample(np.random.default_rng(0), 2)
    target = item.metadata["target"]
    answer = item.answer
    assert task.score(f"{answer} = {target}", item)["correct"] == 1.0
    assert task.score(f"Let me think.\n{answer}", item) == {"correct": 1.0, "format": 0.0, "checker_error": 0.0}
    assert task.score(f"<answer>{answer}</answer>", item)["correct"] == 1.0
    assert task.score(f"{target}", item)["correct"] == 0.0  # the target alone uses none of the numbers
