"""Answer checking: extract the answer from a completion (tag, boxed, Answer: line, last number, whole) and compare it.

Numbers compare exactly and leniently: ``"1,234."``, ``"+1234"``, ``"1234.0"`` and ``"$1234"`` all equal ``1234``;
``"3/4"`` equals ``"0.75"``. Text compares after trimming whitespace, quotes, surrounding markdown emphasis and
trailing punctuation. Expression equivalence (``"x^2+2x"`` vs ``"x(x+2)"``) goes through math-verify, an optional
dependency (``pip install "textgen-env[tasks]"``).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from fractions import Fraction
from types import ModuleType

from gymnasium.error import DependencyNotInstalled

__all__ = [
    "CHECKERS",
    "EXTRACTION_MODES",
    "TASKS_EXTRA",
    "check_answer",
    "expressions_equivalent",
    "extract_answer",
    "follows_format",
    "normalize_text",
    "numbers_equal",
    "parse_number",
    "register_checker",
    "require",
]

TASKS_EXTRA = 'pip install "textgen-env[tasks]"'
"""Installs the optional task dependencies: reasoning-gym and math-verify."""

EXTRACTION_MODES: tuple[str, ...] = ("tag", "boxed", "answer_line", "last_number", "whole", "auto")
"""``tag``: the last ``<answer>...</answer>``; ``boxed``: the last ``\\boxed{...}``; ``answer_line``: the last line
starting ``Answer:`` (or ``Final answer:``); ``last_number``: the last number in the text; ``whole``: the whole
completion, trimmed; ``auto``: the first of tag, boxed, answer_line that finds something, else the whole text."""

_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|\.\d+"
# a sign counts only where it cannot be a binary minus ("10-4" ends in 4, not -4)
_SIGNED_NUMBER = re.compile(rf"(?<![\w)\]}}.])[-+\u2212]?(?:{_NUMBER})|(?:{_NUMBER})")
_WHOLE_NUMBER = re.compile(rf"[-+]?(?:{_NUMBER})")
_ANSWER_LINE = re.compile(r"^\s*(?:\*\*)?(?:final\s+)?answer(?:\*\*)?\s*[:\uff1a](?:\*\*)?\s*(.*?)\s*$", re.I | re.M)
_TRAILING = ".,;:!?"


def require(module: str, pip_name: str, *, purpose: str) -> ModuleType:
    """Import `module`, or raise `DependencyNotInstalled` naming `purpose` and the exact pip command."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if not (module == missing or module.startswith(missing + ".")):
            raise
        raise DependencyNotInstalled(
            f"{purpose} needs the package {pip_name!r}, which is not installed. "
            f"Run: pip install {pip_name} (or {TASKS_EXTRA})"
        ) from error


def _last_boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 1, start + len("\\boxed{")
    for index in range(begin, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[begin:index].strip()
    return None


def extract_answer(text: str, mode: str | Sequence[str] = "auto", *, tag: str = "answer") -> str | None:
    """The answer part of `text` by `mode` (see `EXTRACTION_MODES`), or None when that mode finds nothing.

    A sequence of modes tries each in turn and returns the first hit.

    >>> extract_answer("so 7 + 5 = 12.", "last_number")
    '12'
    >>> extract_answer("I think <answer>Paris</answer>", "auto")
    'Paris'
    """
    if not isinstance(mode, str):
        for one in mode:
            found = extract_answer(text, one, tag=tag)
            if found is not None:
                return found
        return None
    if mode == "auto":
        return extract_answer(text, ("tag", "boxed", "answer_line", "whole"), tag=tag)
    if mode == "tag":
        hits = re.findall(rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>", text, re.S | re.I)
        return hits[-1].strip() if hits else None
    if mode == "boxed":
        return _last_boxed(text)
    if mode == "answer_line":
        lines = [hit for hit in _ANSWER_LINE.findall(text) if hit]
        return lines[-1] if lines else None
    if mode == "last_number":
        numbers = _SIGNED_NUMBER.findall(text)
        return numbers[-1].replace("\u2212", "-") if numbers else None
    if mode == "whole":
        stripped = text.strip()
        return stripped or None
    raise ValueError(f"Expected mode to be one of {list(EXTRACTION_MODES)}, got {mode!r}")


def _trim(text: str) -> str:
    text = text.strip()
    previous = None
    while previous != text:
        previous = text
        text = text.strip().rstrip(_TRAILING).strip()
        for left, right in (("**", "**"), ("*", "*"), ("`", "`"), ('"', '"'), ("'", "'"), ("$", "$")):
            if len(text) > len(left) + len(right) - 1 and text.startswith(left) and text.endswith(right):
                text = text[len(left) : len(text) - len(right)].strip()
    return text


def parse_number(text: str | None) -> Fraction | None:
    """`text` as an exact number if it is one number alone (lenient about signs, separators, punctuation), else None.

    >>> parse_number("-1,234.50.")
    Fraction(-2469, 2)
    >>> parse_number("7 + 5") is None
    True
    """
    if text is None:
        return None
    value = _trim(text).replace("\u2212", "-").replace("\\$", "").lstrip("$").strip()
    if value.startswith("-$") or value.startswith("+$"):
        value = value[0] + value[2:]
    if not _WHOLE_NUMBER.fullmatch(value):
        return None
    try:
        return Fraction(value.replace(",", "").lstrip("+"))
    except (ValueError, ZeroDivisionError):
        return None


def numbers_equal(candidate: str | None, reference: str) -> bool:
    """Whether both parse as numbers (see `parse_number`) and are exactly equal."""
    got, expected = parse_number(candidate), parse_number(reference)
    return got is not None and expected is not None and got == expected


def normalize_text(text: str) -> str:
    """`text` trimmed of whitespace, quotes, emphasis and trailing punctuation, inner whitespace collapsed."""
    return " ".join(_trim(text).split())


def expressions_equivalent(candidate: str, reference: str) -> bool:
    """Whether math-verify finds the two expressions equal (``"1/2"`` vs ``"0.5"``, ``"x(x+2)"`` vs ``"x^2+2x"``).

    Raises `DependencyNotInstalled` with the pip command when math-verify is missing.
    """
    math_verify = require("math_verify", "math-verify", purpose="Expression equivalence (checker 'math')")
    # math-verify reads LaTeX best inside $...$; plain expressions are parsed as they are too
    gold = math_verify.parse(f"${reference}$") or math_verify.parse(reference)
    answer = math_verify.parse(f"${candidate}$") or math_verify.parse(candidate)
    return bool(gold and answer and math_verify.verify(gold, answer))


def follows_format(completion: str, answer_format: str, plain: Callable[[str], bool]) -> bool:
    """Whether `completion` gives its answer in `answer_format` (``plain``: the completion alone passes `plain`)."""
    if answer_format == "tag":
        return bool(extract_answer(completion, "tag"))
    if answer_format == "boxed":
        return bool(extract_answer(completion, "boxed"))
    if answer_format == "answer_line":
        return bool(extract_answer(completion, "answer_line"))
    stripped = completion.strip()
    return bool(stripped) and "\n" not in stripped and plain(stripped)


Checker = Callable[[str, str], bool]
"""A checker takes (completion, reference answer) and says whether the completion is correct."""

_NUMBER_CHAIN = ("tag", "boxed", "answer_line", "last_number")
_TEXT_CHAIN = ("tag", "boxed", "answer_line", "whole")


def _check_number(completion: str, reference: str) -> bool:
    return numbers_equal(extract_answer(completion, _NUMBER_CHAIN), reference)


def _check_exact(completion: str, reference: str) -> bool:
    found = extract_answer(completion, _TEXT_CHAIN)
    return found is not None and normalize_text(found).casefold() == normalize_text(reference).casefold()


def _check_math(completion: str, reference: str) -> bool:
    found = extract_answer(completion, _TEXT_CHAIN)
    if found is None:
        return False
    return numbers_equal(found, reference) or expressions_equivalent(found, reference)


def _check_auto(completion: str, reference: str) -> bool:
    if parse_number(reference) is not None:
        return _check_number(completion, reference)
    return _check_exact(completion, reference)


CHECKERS: dict[str, Checker] = {
    "auto": _check_auto,
    "number": _check_number,
    "exact": _check_exact,
    "math": _check_math,
}
"""Named checkers: ``number`` (tag/boxed/Answer: line, else the last number; exact numeric equality), ``exact``
(tag/boxed/Answer: line, else the whole completion; text equal ignoring case and trimming), ``math`` (as exact,
then numeric, then math-verify equivalence), ``auto`` (``number`` when the reference is a number, else ``exact``)."""


def register_checker(name: str, checker: Checker) -> None:
    """Add a named checker (for jsonl lines' ``checker`` field); an existing name raises ValueError."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"Expected name to be a non-empty string, got {name!r}")
    if name in CHECKERS:
        raise ValueError(f"Expected a new checker name, got {name!r}, which is already registered")
    if not callable(checker):
        raise ValueError(f"Expected checker to be callable (completion, reference) -> bool, got {checker!r}")
    CHECKERS[name] = checker


def check_answer(completion: str, reference: str, checker: str = "auto") -> bool:
    """Whether `completion` answers `reference` under the named `checker` (see `CHECKERS`)."""
    if checker not in CHECKERS:
        raise ValueError(f"Expected checker to be one of {sorted(CHECKERS)}, got {checker!r}")
    return bool(CHECKERS[checker](completion, reference))
