"""rg:<dataset> tasks: built offline with reasoning-gym's generators, its difficulty levels and its own scorer."""

from __future__ import annotations

import socket
import sys

import numpy as np
import pytest
from gymnasium.error import DependencyNotInstalled

from textgen_env.tasks import TaskSampler, make_task
from textgen_env.tasks.reasoning_gym import ReasoningGymTask

pytest.importorskip("reasoning_gym")


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("reasoning-gym tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("dataset", ["chain_sum", "letter_counting", "spell_backward", "number_sorting"])
def test_items_are_scored_by_reasoning_gym_offline(no_network, dataset):
    task = make_task(f"rg:{dataset}", size=40)
    assert task.name == f"rg:{dataset}" and len(task.difficulties) > 1
    for level in (task.difficulties[0], task.difficulties[-1]):
        item = task.sample(np.random.default_rng(0), level)
        assert item.metadata["entry"]["question"] in item.question
        right = task.score(f"<answer>{item.answer}</answer>", item)
        assert right["correct"] == 1.0 and right["score"] == 1.0
        assert task.score("<answer>certainly not this</answer>", item)["correct"] == 0.0


def test_higher_levels_ask_harder_questions():
    task = ReasoningGymTask("chain_sum", size=20)
    assert task.level_options(1)["max_terms"] < task.level_options(task.difficulties[-1])["max_terms"]


def test_dataset_options_pass_through_as_one_level():
    task = make_task("rg:chain_sum", size=20, min_terms=4, max_terms=4)
    assert task.difficulties == (1,)
    item = task.sample(np.random.default_rng(0), 1)
    assert item.metadata["entry"]["metadata"]["num_terms"] == 4


@pytest.mark.parametrize(
    "options, message",
    [({"colour": 1}, "unexpected keyword argument 'colour'"), ({"min_terms": 5, "max_terms": 2}, "max_terms must be")],
    ids=["unknown", "inconsistent"],
)
def test_bad_dataset_options_are_refused_when_the_task_is_made(options, message):
    with pytest.raises(ValueError, match=rf"Expected options of reasoning-gym's ChainSumConfig \(fields \[.*{message}"):
        make_task("rg:chain_sum", **options)


def test_held_out_items_do_not_appear_in_training():
    task = make_task("rg:letter_counting", size=200)
    train = {i.canonical for i in TaskSampler(task, seed=0, split="train", difficulty=1).take(300, unique=False)}
    held_out = {i.canonical for i in TaskSampler(task, seed=0, split="eval", difficulty=1).take(20)}
    assert not train & held_out


def test_an_unknown_dataset_is_named_with_a_suggestion():
    with pytest.raises(ValueError, match=r"Expected a reasoning-gym dataset after 'rg:'.*got 'chain_summ'.*chain_sum"):
        make_task("rg:chain_summ")


def test_a_scorer_that_raises_scores_zero_and_is_counted(monkeypatch):
    task = ReasoningGymTask("chain_sum", size=5)
    item = task.sample(np.random.default_rng(0), 1)

    def broken(answer, entry):
        raise KeyError("scorer bug")

    monkeypatch.setattr(task._dataset(1), "score_answer", broken)
    assert task.score(item.answer, item) == {"correct": 0.0, "format": 0.0, "checker_error": 1.0, "score": 0.0}
    assert task.checker_errors == 1


def test_missing_reasoning_gym_raises_with_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "reasoning_gym.factory", None)
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)
    with pytest.raises(DependencyNotInstalled, match="Run: pip install reasoning-gym"):
        ReasoningGymTask("chain_sum")


def test_extraction_lets_the_strict_checker_see_a_number_in_prose():
    task = make_task("rg:basic_arithmetic", size=20)
    lenient = make_task("rg:basic_arithmetic", size=20, extraction="last_number")
    item = task.sample(np.random.default_rng(0), 1)
    prose = f"Let me compute it step by step. The result is {item.answer}."
    assert task.score(prose, item)["correct"] == 0.0  # the whole text is not the answer
    assert lenient.score(prose, item)["correct"] == 1.0
    assert lenient.score("The result is 123456789.", item)["correct"] == 0.0
    assert make_task("rg:basic_arithmetic", size=20, extraction=["tag", "last_number"]).extraction == (
        "tag",
        "last_number",
    )


@pytest.mark.parametrize("extraction", ["nearest", [], ["tag", "firstnumber"]])
def test_an_unknown_extraction_is_refused(extraction):
    with pytest.raises(ValueError, match="Expected extraction to be one of"):
        make_task("rg:basic_arithmetic", size=20, extraction=extraction)
