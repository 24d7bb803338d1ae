"""Answer extraction modes, lenient exact numbers, text normalization, named checkers and math-verify equivalence."""

from __future__ import annotations

import sys
from fractions import Fraction

import pytest
from gymnasium.error import DependencyNotInstalled

from textgen_env.tasks import answers
from textgen_env.tasks.answers import (
    check_answer,
    expressions_equivalent,
    extract_answer,
    follows_format,
    normalize_text,
    numbers_equal,
    parse_number,
    register_checker,
)


@pytest.mark.parametrize(
    "text, mode, expected",
    [
        ("so 7 + 5 = 12.", "last_number", "12"),
        ("10-4", "last_number", "4"),
        ("x = -3", "last_number", "-3"),
        ("It costs 1,234 dollars", "last_number", "1,234"),
        ("no digits", "last_number", None),
        ("a \\boxed{\\frac{1}{2}} b \\boxed{7}", "boxed", "7"),
        ("\\boxed{\\frac{1}{2}}", "boxed", "\\frac{1}{2}"),
        ("<answer> 1 </answer> then <answer>Paris</answer>", "tag", "Paris"),
        ("Work...\nAnswer: 42\n", "answer_line", "42"),
        ("**Final answer:** 9", "answer_line", "9"),
        ("  olleh \n", "whole", "olleh"),
        ("reasoning then \\boxed{5}", "auto", "5"),
        ("just text", "auto", "just text"),
        ("", "whole", None),
    ],
)
def test_each_extraction_mode_finds_its_answer(text, mode, expected):
    assert extract_answer(text, mode) == expected


def test_a_sequence_of_modes_takes_the_first_hit_and_a_custom_tag_works():
    assert extract_answer("x 3 y 4", ("boxed", "last_number")) == "4"
    assert extract_answer("<final>yes</final>", "tag", tag="final") == "yes"
    with pytest.raises(ValueError, match="Expected mode to be one of"):
        extract_answer("x", "first_word")


@pytest.mark.parametrize(
    "candidate, reference",
    [("1,234.", "1234"), ("+12", "12"), ("12.0", "12"), ("$1,000", "1000"), ("-7", "-7"), ("\u22127", "-7"),
     ("3/4", "0.75"), ("0.50", "1/2"), ("**42**", "42"), ("`42`", "42"), ("42!", "42")],
)  # fmt: skip
def test_numbers_compare_exactly_and_leniently(candidate, reference):
    assert numbers_equal(candidate, reference)


@pytest.mark.parametrize(
    "candidate, reference",
    [("12", "-12"), ("0.33", "1/3"), ("1,23", "123"), ("7 + 5", "12"), (None, "1"), ("twelve", "12")],
)
def test_different_or_unparseable_numbers_do_not_match(candidate, reference):
    assert not numbers_equal(candidate, reference)


def test_parse_number_is_exact():
    assert parse_number("0.1") == Fraction(1, 10)
    assert parse_number("-1,234.50.") == Fraction(-2469, 2)
    assert parse_number("1/0") is None


def test_normalize_text_trims_quotes_emphasis_and_punctuation():
    assert normalize_text(' "Hello   world." ') == "Hello world"
    assert normalize_text("**olleh**") == "olleh"


@pytest.mark.parametrize(
    "completion, reference, checker, expected",
    [
        ("The answer is 72.", "72", "number", True),
        ("Answer: 71", "72", "number", False),
        ("paris", "Paris", "exact", True),
        ("Paris is the capital", "Paris", "exact", False),
        ("\\boxed{\\frac{1}{2}}", "0.5", "math", True),
        ("Answer: x(x+2)", "x^2+2*x", "math", True),
        ("Answer: x(x+3)", "x^2+2*x", "math", False),
        ("so 18", "18", "auto", True),
        ("<answer>Blue</answer>", "blue", "auto", True),
    ],
)
def test_named_checkers(completion, reference, checker, expected):
    assert check_answer(completion, reference, checker) is expected


def test_an_unknown_checker_and_a_duplicate_name_are_refused():
    with pytest.raises(ValueError, match=r"Expected checker to be one of \['auto', "):
        check_answer("1", "1", "fuzzy")
    with pytest.raises(ValueError, match="already registered"):
        register_checker("number", lambda completion, reference: True)
    with pytest.raises(ValueError, match="Expected checker to be callable"):
        register_checker("mine", "not callable")  # type: ignore[arg-type]  # the point: a bad argument


def test_a_registered_checker_is_used_by_name(monkeypatch):
    monkeypatch.setattr(answers, "CHECKERS", dict(answers.CHECKERS))
    register_checker("startswith", lambda completion, reference: completion.startswith(reference))
    assert check_answer("abc", "ab", "startswith")


@pytest.mark.parametrize(
    "completion, answer_format, expected",
    [
        ("42", "plain", True),
        ("42.", "plain", True),
        ("7 + 5 = 12", "plain", False),
        ("12\n", "plain", True),
        ("12\nbecause", "plain", False),
        ("so <answer>12</answer>", "tag", True),
        ("12", "tag", False),
        ("\\boxed{12}", "boxed", True),
        ("work\nAnswer: 12", "answer_line", True),
    ],
)
def test_follows_format(completion, answer_format, expected):
    assert follows_format(completion, answer_format, lambda text: parse_number(text) is not None) is expected


def test_math_verify_missing_raises_with_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "math_verify", None)
    with pytest.raises(DependencyNotInstalled, match=r"Run: pip install math-verify \(or pip install"):
        expressions_equivalent("1", "1")
