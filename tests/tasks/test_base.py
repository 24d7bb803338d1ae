"""TaskItem, the Task protocol and TaskBase: messages, read-only metadata, difficulty checks, a failing checker."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from textgen_env.tasks import Task, TaskItem, available_tasks, make_task
from textgen_env.tasks.arithmetic import ArithmeticTask

PROCEDURAL = [name for name in available_tasks() if name != "jsonl"]  # jsonl needs a file


def test_messages_put_the_system_prompt_first_when_there_is_one():
    item = TaskItem("What is 2 + 2?", "4", 1, "Answer with the number only.", {})
    assert item.messages() == [
        {"role": "system", "content": "Answer with the number only."},
        {"role": "user", "content": "What is 2 + 2?"},
    ]
    assert TaskItem("Q?", "a", 1, None, {}).messages() == [{"role": "user", "content": "Q?"}]


def test_metadata_is_read_only_and_canonical_defaults_to_the_question():
    item = TaskItem("Q?", "a", 1, None, {"x": 1})
    with pytest.raises(TypeError, match=r"TaskItem\.metadata is read-only"):
        item.metadata["x"] = 2  # type: ignore[index]  # the point: a read-only mapping refuses writes
    assert item.canonical == "Q?"


def test_equal_items_hash_alike():
    first, second = (TaskItem("Q?", "a", 1, None, {"options": [1, 2]}) for _ in range(2))
    assert first == second and len({first, second}) == 1


def test_items_pickle_and_deep_copy_for_vector_envs():
    item = make_task("countdown").sample(np.random.default_rng(0), 3)
    for copied in (pickle.loads(pickle.dumps(item)), copy.deepcopy(item)):
        assert copied == item
        with pytest.raises(TypeError):
            copied.metadata["target"] = 0  # type: ignore[index]  # still read-only


def test_an_empty_question_is_refused():
    with pytest.raises(ValueError, match="Expected question to be a non-empty string"):
        TaskItem("  ", "a", 1, None, {})


@pytest.mark.parametrize("name", PROCEDURAL)
def test_every_builtin_is_a_task_with_levels_that_sample_and_score_their_own_answer(name):
    task = make_task(name)
    assert isinstance(task, Task)
    assert list(task.difficulties) == sorted(task.difficulties)
    rng = np.random.default_rng(0)
    for level in task.difficulties:
        for _ in range(20):
            item = task.sample(rng, level)
            assert item.difficulty == level
            assert task.score(item.answer, item) == {"correct": 1.0, "format": 1.0, "checker_error": 0.0}
            assert task.score("", item)["correct"] == 0.0


@pytest.mark.parametrize("name", PROCEDURAL)
def test_sampling_depends_only_on_the_generator(name):
    task = make_task(name)
    level = task.difficulties[-1]
    first = [task.sample(np.random.default_rng(7), level) for _ in range(3)]
    second = [task.sample(np.random.default_rng(7), level) for _ in range(3)]
    assert first == second


@pytest.mark.parametrize("difficulty", [0, 99, "hard", 1.0, True], ids=["zero", "too-high", "str", "float", "bool"])
def test_a_difficulty_out_of_range_names_the_valid_levels(difficulty):
    with pytest.raises(ValueError, match=r"Expected difficulty for task 'arithmetic' to be one of \[1, 2"):
        make_task("arithmetic").sample(np.random.default_rng(0), difficulty)


def test_a_checker_that_raises_scores_zero_and_is_counted():
    class Broken(ArithmeticTask):
        def _score(self, completion, item):
            raise RuntimeError("checker bug")

    task = Broken()
    item = task.sample(np.random.default_rng(0), 1)
    assert task.score(item.answer, item) == {"correct": 0.0, "format": 0.0, "checker_error": 1.0}
    task.score("x", item)
    assert task.checker_errors == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"answer_format": "xml"}, "Expected answer_format to be one of"),
        ({"phrasing": 99}, r"Expected phrasing for task 'arithmetic' to be None or an int in \[0, "),
        ({"system_prompt": "yes"}, "Expected system_prompt to be a bool"),
    ],
    ids=["format", "phrasing", "system-prompt"],
)
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_task("arithmetic", **kwargs)


def test_without_a_system_prompt_the_instruction_ends_the_question():
    item = make_task("arithmetic", system_prompt=False, phrasing=0).sample(np.random.default_rng(0), 1)
    assert item.system_prompt is None
    assert item.question.startswith("What is ") and item.question.endswith("Answer with the number only.")


def test_score_refuses_what_is_not_a_completion():
    task = make_task("arithmetic")
    item = task.sample(np.random.default_rng(0), 1)
    with pytest.raises(TypeError, match="Expected completion to be a str, got NoneType"):
        task.score(None, item)  # type: ignore[arg-type]  # the point: a wrong type
    with pytest.raises(TypeError, match="Expected item to be a TaskItem, got dict"):
        task.score("1", {"answer": "1"})  # type: ignore[arg-type]  # the point: a wrong type
