"""The `calculator` tool: exact arithmetic on integers and fractions by walking the expression's syntax tree.

Nothing is evaluated by Python itself: the expression is parsed with `ast.parse(mode="eval")` and only number
literals, ``+ - * / // % **``, unary signs and parentheses are accepted. Division is exact (`fractions.Fraction`),
so ``1/3 + 1/6`` is ``1/2``; decimals like ``0.1`` are read as exact fractions. Exponents, literal sizes and result
sizes are bounded, so no expression can exhaust memory or time.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from fractions import Fraction

from textgen_env.tools.base import Tool, ToolError

__all__ = ["MAX_DIGITS", "MAX_EXPONENT", "calculate", "calculator_tool", "format_number"]

MAX_EXPONENT = 1000
"""Largest absolute exponent of ``**``."""
MAX_DIGITS = 2000
"""Largest number of digits of any intermediate numerator or denominator."""
MAX_EXPRESSION_CHARS = 500
"""Longest expression accepted."""

_BINARY: dict[type, Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _checked(value: Fraction) -> Fraction:
    # bit_length is a cheap bound on the digit count: digits <= bits * log10(2) + 1
    if max(value.numerator.bit_length(), value.denominator.bit_length()) * 0.30103 > MAX_DIGITS:
        raise ToolError(f"Expected results of at most {MAX_DIGITS} digits, got a larger one")
    return value


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        raise ToolError(f"Expected an integer exponent, got {exponent}")
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"Expected an exponent of at most {MAX_EXPONENT} in size, got {exponent}")
    if base == 0 and exponent < 0:
        raise ToolError("Expected a nonzero base for a negative exponent, got 0")
    bits = max(base.numerator.bit_length(), base.denominator.bit_length()) * abs(int(exponent))
    if bits * 0.30103 > MAX_DIGITS:  # refuse before computing a huge power
        raise ToolError(f"Expected results of at most {MAX_DIGITS} digits, got a larger one")
    return base ** int(exponent)


def _evaluate(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return _checked(Fraction(str(node.value)) if isinstance(node.value, float) else Fraction(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        value = _evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            return _checked(_power(left, right))
        if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)) and right == 0:
            raise ToolError("Division by zero")
        if isinstance(node.op, ast.FloorDiv):
            return _checked(Fraction(left // right))
        if isinstance(node.op, ast.Mod):
            return _checked(left % right)
        apply = _BINARY.get(type(node.op))
        if apply is not None:
            return _checked(apply(left, right))
    raise ToolError(f"Expected numbers, + - * / // % ** and parentheses, got {type(node).__name__}")


def format_number(value: Fraction) -> str:
    """An integer as digits, anything else as an exact fraction ``p/q`` and its decimal to 12 places."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator} (≈ {float(value):.12g})"


def calculate(expression: str) -> str:
    """The exact value of `expression` as text (see `format_number`); `ToolError` for anything else.

    >>> calculate("123 * 456")
    '56088'
    >>> calculate("1/3 + 1/6")
    '1/2 (≈ 0.5)'
    """
    if not isinstance(expression, str) or not expression.strip():
        raise ToolError(f"Expected an arithmetic expression, got {expression!r}")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"Expected an expression of at most {MAX_EXPRESSION_CHARS} characters, got {len(expression)}")
    text = expression.replace("\u00d7", "*").replace("\u00f7", "/").replace("^", "**")  # x and division signs
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ToolError(f"Expected an arithmetic expression, got {expression!r} ({error.msg})") from None
    return format_number(_evaluate(tree))


def calculator_tool() -> Tool:
    """The built-in ``calculator`` tool (argument ``expression``)."""
    return Tool(
        name="calculator",
        description="Exact arithmetic: evaluates an expression with + - * / // % ** and parentheses.",
        parameters={
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "for example (12 + 7) * 31"}},
            "required": ["expression"],
        },
        fn=calculate,
    )
