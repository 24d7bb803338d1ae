"""jsonl task files: questions from disk, per-line checkers, GSM8K answers, and bad lines named by number."""

from __future__ import annotations

import json

import numpy as np
import pytest

from textgen_env.tasks import JsonlTask, TaskSampler, answers, make_task, register_checker


def _write(path, lines):
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def test_questions_answers_and_checkers_come_from_the_file(tmp_path):
    path = _write(
        tmp_path / "qa.jsonl",
        [
            {"question": "Natalia sold 48 clips... How many in all?", "answer": "In April... 48+24=72\n#### 72"},
            "",
            {"question": "Capital of France?", "answer": "Paris", "checker": "exact", "difficulty": 2},
            {"question": "Simplify 2/4.", "answer": "1/2", "checker": "math", "difficulty": 2},
        ],
    )
    task = make_task("jsonl", path=path)
    assert task.difficulties == (1, 2)
    gsm = task.sample(np.random.default_rng(0), 1)
    assert gsm.answer == "72" and gsm.metadata["line"] == 1
    assert task.score("So the total is 72.", gsm)["correct"] == 1.0
    assert task.score("72", gsm) == {"correct": 1.0, "format": 1.0, "checker_error": 0.0}
    items = {item.question: item for item in (task.sample(np.random.default_rng(s), 2) for s in range(20))}
    assert task.score("paris.", items["Capital of France?"])["correct"] == 1.0
    assert task.score("\\boxed{0.5}", items["Simplify 2/4."])["correct"] == 1.0
    assert gsm.system_prompt == "Answer with the answer only, nothing else."


def test_system_prompt_can_be_set_or_left_out(tmp_path):
    path = _write(tmp_path / "qa.jsonl", [{"question": "1+1?", "answer": 2}])
    assert make_task("jsonl", path=path, system_prompt="Be brief.").sample(np.random.default_rng(0), 1).messages()[
        0
    ] == {"role": "system", "content": "Be brief."}
    assert make_task("jsonl", path=path, system_prompt="").sample(np.random.default_rng(0), 1).system_prompt is None


def test_held_out_questions_are_never_trained_on(tmp_path):
    path = _write(tmp_path / "qa.jsonl", [{"question": f"What is {n} + 1?", "answer": n + 1} for n in range(100)])
    task = make_task("jsonl", path=path)
    train = {i.question for i in TaskSampler(task, seed=0, split="train", difficulty=1).take(400, unique=False)}
    held_out = {i.question for i in TaskSampler(task, seed=0, split="eval", difficulty=1).take(10)}
    assert held_out and not train & held_out


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "qa.jsonl:2: Expected a JSON object, got invalid JSON"),
        ("[1, 2]", r"qa.jsonl:2: Expected a JSON object with 'question' and 'answer', got \[1, 2\]"),
        ({"answer": "1"}, "qa.jsonl:2: Expected 'question' to be a non-empty string, got None"),
        ({"question": "q"}, "qa.jsonl:2: Expected 'answer' to be a string or a number, got None"),
        ({"question": "q", "answer": " "}, "qa.jsonl:2: Expected a non-empty 'answer'"),
        ({"question": "q", "answer": "1", "checker": "fuzzy"}, r"qa.jsonl:2: Expected 'checker' to be one of \["),
        ({"question": "q", "answer": "1", "difficulty": "hard"}, "qa.jsonl:2: Expected 'difficulty' to be an int"),
    ],
    ids=["json", "not-object", "no-question", "no-answer", "empty-answer", "checker", "difficulty"],
)
def test_a_bad_line_is_named_by_its_number(tmp_path, line, message):
    path = _write(tmp_path / "qa.jsonl", [{"question": "ok?", "answer": "1"}, line])
    with pytest.raises(ValueError, match=message):
        make_task("jsonl", path=path)


def test_a_missing_or_empty_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="Expected path to be a JSON Lines task file"):
        make_task("jsonl", path=tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(ValueError, match="Expected at least one question in the task file"):
        make_task("jsonl", path=tmp_path / "empty.jsonl")


@pytest.fixture
def broken_checker():
    def broken(completion, reference):
        raise ZeroDivisionError("user checker bug")

    register_checker("broken", broken)
    yield
    del answers.CHECKERS["broken"]


@pytest.mark.usefixtures("broken_checker")
def test_a_registered_checker_that_raises_scores_zero_and_is_counted(tmp_path):
    path = _write(tmp_path / "qa.jsonl", [{"question": "q?", "answer": "1", "checker": "broken"}])
    task = JsonlTask(path)
    item = task.sample(np.random.default_rng(0), 1)
    assert task.score("1", item) == {"correct": 0.0, "format": 0.0, "checker_error": 1.0}
    assert task.checker_errors == 1
