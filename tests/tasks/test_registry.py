"""The registry: the built-in names, unknown names listed with a suggestion, your own tasks registered."""

from __future__ import annotations

import numpy as np
import pytest

from textgen_env.tasks import TaskItem, available_tasks, make_task, register_task, registry


def test_the_builtins_are_available():
    assert {"arithmetic", "countdown", "sorting", "strings", "counting", "comparison", "word_problems", "jsonl"} <= set(
        available_tasks()
    )


def test_an_unknown_task_lists_the_valid_names_and_a_close_one():
    with pytest.raises(ValueError, match=r"Expected task to be one of \['arithmetic', .*got 'sortin'.*'sorting'"):
        make_task("sortin")


def test_unknown_options_are_refused():
    with pytest.raises(TypeError, match="unexpected keyword argument 'digits'"):
        make_task("arithmetic", digits=3)


def test_your_own_task_can_be_registered(monkeypatch):
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))

    class Echo:
        name = "echo"
        difficulties = (1,)

        def sample(self, rng, difficulty):
            return TaskItem("Say hi.", "hi", difficulty, None, {})

        def score(self, completion, item):
            ok = float(completion.strip() == item.answer)
            return {"correct": ok, "format": ok}

    register_task("echo", Echo)
    task = make_task("echo")
    assert task.score("hi", task.sample(np.random.default_rng(0), 1))["correct"] == 1.0
    with pytest.raises(ValueError, match="already registered"):
        register_task("echo", Echo)
    with pytest.raises(ValueError, match="not starting with 'rg:'"):
        register_task("rg:mine", Echo)
