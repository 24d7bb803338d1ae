"""The calculator: exact results, and refusal (not evaluation) of anything but bounded arithmetic."""

from __future__ import annotations

import pytest

from textgen_env.tools import ToolError, calculate, calculator_tool


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("123 * 456", "56088"),
        ("987654321 * 123456789", str(987654321 * 123456789)),
        ("1/3 + 1/6", "1/2 (≈ 0.5)"),
        ("0.1 + 0.2", "3/10 (≈ 0.3)"),  # exact, unlike floats
        ("(2 + 3) * -4", "-20"),
        ("2 ** 10 - 7 // 2 + 7 % 3", "1022"),
        ("2^3", "8"),
        ("2 ** -2", "1/4 (≈ 0.25)"),
    ],
)
def test_exact_arithmetic(expression, expected):
    assert calculate(expression) == expected


@pytest.mark.parametrize(
    "expression, message",
    [
        ("__import__('os').system('ls')", "Expected numbers, \\+ - \\* / // % \\*\\* and parentheses, got Call"),
        ("x + 1", "got Name"),
        ("(1).__class__", "got Attribute"),
        ("2 ** 100000", "Expected an exponent of at most 1000"),
        ("10 ** 10 ** 10", "Expected an exponent of at most 1000"),
        ("999 ** 999 * 999 ** 999", "Expected results of at most 2000 digits"),
        ("1 / 0", "Division by zero"),
        ("2 ** 0.5", "Expected an integer exponent"),
        ("1 +", "Expected an arithmetic expression"),
        ("9" * 600, "Expected an expression of at most 500 characters"),
    ],
    ids=["call", "name", "attribute", "exponent", "tower", "digits", "zero", "root", "syntax", "length"],
)
def test_anything_else_is_refused(expression, message):
    with pytest.raises(ToolError, match=message):
        calculate(expression)


def test_the_tool_takes_an_expression_argument():
    assert calculator_tool().call({"expression": "6*7"}) == "42"
