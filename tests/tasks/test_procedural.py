"""The procedural tasks: each level asks something else, answers are right, lenient forms and several answers count."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from textgen_env.tasks import make_task
from textgen_env.tasks.expressions import evaluate


def _items(name, level, count=60, seed=0, **kwargs):
    task = make_task(name, **kwargs)
    rng = np.random.default_rng(seed)
    return task, [task.sample(rng, level) for _ in range(count)]


def test_arithmetic_levels_change_the_operations_and_terms():
    operators = {}
    for level in range(1, 8):
        _, items = _items("arithmetic", level)
        expressions = [item.metadata["expression"] for item in items]
        assert all(evaluate(e) == int(item.answer) for e, item in zip(expressions, items))
        operators[level] = {op for e in expressions for op in "+-*/()" if op in e.replace(" -", " ~")}
    assert operators[1] == {"+"} and operators[3] == {"*"}
    assert "/" in operators[6] and "(" in operators[6] and "(" in operators[7]


def test_arithmetic_uses_several_phrasings_and_a_fixed_one_on_request():
    _, items = _items("arithmetic", 1)
    assert len(Counter(item.metadata["phrasing"] for item in items)) >= 4
    _, fixed = _items("arithmetic", 1, phrasing=2)
    assert {item.metadata["phrasing"] for item in fixed} == {2}
    assert all(" plus " in item.question for item in fixed)


@pytest.mark.parametrize(
    "completion, expected",
    [("12", (1, 1)), ("12.", (1, 1)), ("7 + 5 = 12", (1, 0)), ("The answer is 12", (1, 0)), ("13", (0, 1)),
     ("", (0, 0)), ("twelve", (0, 0))],
)  # fmt: skip
def test_arithmetic_scores_the_number_and_the_format_separately(completion, expected):
    task = make_task("arithmetic")
    item = next(i for i in _items("arithmetic", 1, count=200)[1] if i.answer == "12")
    scores = task.score(completion, item)
    assert (scores["correct"], scores["format"]) == expected


@pytest.mark.parametrize("answer_format", ["tag", "boxed", "answer_line"])
def test_other_answer_formats_are_asked_for_and_scored(answer_format):
    task, items = _items("arithmetic", 2, count=1, answer_format=answer_format)
    item = items[0]
    wrapped = {"tag": f"<answer>{item.answer}</answer>", "boxed": f"\\boxed{{{item.answer}}}",
               "answer_line": f"So.\nAnswer: {item.answer}"}[answer_format]  # fmt: skip
    assert task.score(wrapped, item) == {"correct": 1.0, "format": 1.0, "checker_error": 0.0}
    assert task.score(item.answer, item)["format"] == 0.0
    marker = {"tag": "<answer>", "boxed": "\\boxed{}", "answer_line": "Answer: <number>"}[answer_format]
    assert item.system_prompt is not None and marker in item.system_prompt


def test_sorting_by_length_accepts_every_order_of_equal_lengths():
    task, items = _items("sorting", 5, count=200)
    item = next(i for i in items if len({len(w) for w in i.metadata["items"]}) < 5)
    words = item.answer.split(", ")
    lengths = [len(w) for w in words]
    tie = next(k for k in range(4) if lengths[k] == lengths[k + 1])
    swapped = [*words[:tie], words[tie + 1], words[tie], *words[tie + 2 :]]
    assert task.score(", ".join(swapped), item)["correct"] == 1.0
    assert task.score(", ".join(sorted(words, key=len, reverse=True)), item)["correct"] == 0.0


def test_sorting_reads_brackets_spaces_and_numeric_forms():
    task, items = _items("sorting", 1, count=1)
    item = items[0]
    numbers = item.answer.split(", ")
    assert task.score("[" + " ".join(numbers) + "]", item)["correct"] == 1.0
    assert task.score(", ".join(f"{n}.0" for n in numbers), item)["correct"] == 1.0
    assert task.score(", ".join(numbers[::-1]), item)["correct"] == 0.0
    assert task.score(", ".join(numbers[:-1]), item)["correct"] == 0.0


def test_string_answers_are_correct_by_construction():
    for level, check in [
        (1, lambda text, answer: answer == text[::-1]),
        (2, lambda text, answer: answer == "".join(w[0] for w in text.split()).upper()),
        (3, lambda text, answer: answer.split() == text.split()[::-1]),
        (4, lambda text, answer: sorted(answer) == sorted(text) and list(answer) == sorted(answer)),
    ]:
        _, items = _items("strings", level)
        assert all(check(item.metadata["text"], item.answer) for item in items)
    task, items = _items("strings", 1, count=1)
    assert task.score(f'"{items[0].answer.upper()}".', items[0])["correct"] == 1.0


def test_counting_answers_match_a_recount():
    _, items = _items("counting", 1)
    for item in items:
        letter, word = item.metadata["canonical"].split("|")[1:]
        assert int(item.answer) == word.count(letter)
    _, items = _items("counting", 2)
    assert all(int(item.answer) == len(item.metadata["canonical"].split("|", 1)[1].split()) for item in items)


def test_comparison_accepts_equal_values_and_yes_no_synonyms():
    task, items = _items("comparison", 4, count=1)
    item = items[0]
    numerator, denominator = (int(x) for x in item.answer.split("/"))
    assert task.score(f"{2 * numerator}/{2 * denominator}", item)["correct"] == 1.0
    task, items = _items("comparison", 5, count=20)
    item = items[0]
    synonym = "True" if item.answer == "yes" else "false"
    assert task.score(synonym, item) == {"correct": 1.0, "format": 1.0, "checker_error": 0.0}
    assert item.system_prompt == "Answer yes or no."
    wrong = "no" if item.answer == "yes" else "yes"
    assert task.score(wrong, item)["correct"] == 0.0


def test_word_problem_levels_ask_different_things():
    stories = {level: _items("word_problems", level, count=5)[1][0].question for level in range(1, 6)}
    assert "gives" in stories[2] and "packs" in stories[3] and "dollar" in stories[4] and "shares" in stories[5]
    for level in range(1, 6):
        _, items = _items("word_problems", level)
        assert all(int(item.answer) >= 0 for item in items)


def test_a_comparison_answer_must_name_one_option():
    task, items = _items("comparison", 1, count=1)
    item = items[0]
    low, high = sorted(item.metadata["options"], key=int)
    assert task.score(f"To compare {low} and {high}, look at the digits", item)["correct"] == 0.0
    assert task.score(f"The larger number is {high}.", item)["correct"] == 1.0
    assert task.score(f"{low} is smaller, so <answer>{high}</answer>", item)["correct"] == 1.0
    assert task.score(f"The larger number is {low}.", item)["correct"] == 0.0


def test_plain_format_for_text_and_lists_means_the_answer_alone():
    task, items = _items("strings", 1, count=1)
    assert task.score("music is a word with letters", items[0])["format"] == 0.0
    assert task.score("cisum", items[0])["format"] == 1.0
    task, items = _items("sorting", 1, count=1)
    assert task.score("The largest number is 24, and the smallest number is 81.", items[0])["format"] == 0.0
