"""A safe evaluator of arithmetic expressions (numbers, + - * /, parentheses) on exact fractions; never `eval`."""

from __future__ import annotations

import ast
from fractions import Fraction

__all__ = ["MAX_EXPRESSION_LENGTH", "evaluate", "numbers_in"]

MAX_EXPRESSION_LENGTH = 200
"""Longer text is refused before parsing (a completion is untrusted input)."""

_SYMBOLS = {"\u00d7": "*", "\u00f7": "/", "\u2212": "-", "\u2013": "-", "\u22c5": "*", "\u00b7": "*", "\\times": "*"}
_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def _parse(expression: str) -> ast.expr:
    if not isinstance(expression, str):
        raise ValueError(f"Expected an expression string, got {expression!r}")
    text = expression.strip()
    for symbol, ascii_symbol in _SYMBOLS.items():
        text = text.replace(symbol, ascii_symbol)
    if not text or len(text) > MAX_EXPRESSION_LENGTH:
        raise ValueError(
            f"Expected an expression of 1 to {MAX_EXPRESSION_LENGTH} characters, got {len(text)} characters"
        )
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise ValueError(f"Expected an arithmetic expression, got {expression!r} ({error.msg})") from None
    return tree.body


def _value(node: ast.expr, literals: list[Fraction]) -> Fraction:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        value = Fraction(repr(node.value)) if isinstance(node.value, float) else Fraction(node.value)
        literals.append(value)
        return value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _value(node.operand, literals)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _value(node.left, literals), _value(node.right, literals)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if right == 0:
            raise ValueError("Expected no division by zero in the expression")
        return left / right
    raise ValueError(
        f"Expected only numbers, + - * / and parentheses in the expression, got {type(node).__name__} "
        f"({ast.unparse(node)!r})"
    )


def evaluate(expression: str) -> Fraction:
    """The exact value of `expression`; ValueError for anything but numbers, + - * /, unary signs and parentheses.

    The multiplication, division and minus signs (U+00D7, U+00F7, U+2212) are read as ``*``, ``/`` and ``-``.
    Names, calls, powers and attributes are refused, so a completion can never run code.

    >>> evaluate("(1 + 2) * 3 / 4")
    Fraction(9, 4)
    """
    return _value(_parse(expression), [])


def numbers_in(expression: str) -> list[Fraction]:
    """The numeric literals of `expression` in order (unary minus not applied), after checking it like `evaluate`."""
    literals: list[Fraction] = []
    _value(_parse(expression), literals)
    return literals
