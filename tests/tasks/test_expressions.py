"""The safe expression evaluator: exact arithmetic, and everything that is not arithmetic refused (never eval)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from textgen_env.tasks.expressions import MAX_EXPRESSION_LENGTH, evaluate, numbers_in


@pytest.mark.parametrize(
    "expression, value",
    [("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("7 / 2", Fraction(7, 2)), ("-3 + +4", 1), ("0.1 + 0.2", Fraction(3, 10)),
     ("6 \u00d7 7", 42), ("8 \u00f7 4", 2), ("9 \u2212 10", -1), ("2 \\times 3", 6)],
)  # fmt: skip
def test_values_are_exact(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    "expression, message",
    [
        ("__import__('os').system('true')", "Expected only numbers"),
        ("x + 1", "Expected only numbers"),
        ("2 ** 100000", "Expected only numbers"),
        ("(lambda: 1)()", "Expected only numbers"),
        ("'a' * 3", "Expected only numbers"),
        ("True + 1", "Expected only numbers"),
        ("1 / 0", "Expected no division by zero"),
        ("1 +", "Expected an arithmetic expression"),
        ("", "Expected an expression of 1 to"),
        ("1+" * MAX_EXPRESSION_LENGTH + "1", "Expected an expression of 1 to"),
    ],
    ids=["import", "name", "power", "lambda", "string", "bool", "zero-division", "syntax", "empty", "too-long"],
)
def test_anything_but_arithmetic_is_refused(expression, message):
    with pytest.raises(ValueError, match=message):
        evaluate(expression)


def test_numbers_in_lists_the_literals_in_order():
    assert numbers_in("(10 - 4) * -3") == [10, 4, 3]
