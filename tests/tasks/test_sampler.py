"""TaskSampler: train and held-out items never share content, each split is reproducible, 'auto' uses a curriculum."""

from __future__ import annotations

import numpy as np
import pytest

from textgen_env.tasks import Curriculum, TaskSampler, available_tasks, is_eval_item, make_task

PROCEDURAL = [name for name in available_tasks() if name != "jsonl"]  # jsonl needs a file


@pytest.mark.parametrize("name", PROCEDURAL)
def test_train_and_eval_items_never_share_content(name):
    task = make_task(name)
    for level in task.difficulties:
        train_sampler = TaskSampler(task, seed=1, split="train", difficulty=level)
        eval_sampler = TaskSampler(task, seed=1, split="eval", difficulty=level)
        train = {item.canonical for item in train_sampler.take(300, unique=False)}
        held_out = {item.canonical for item in eval_sampler.take(100, unique=False)}
        assert held_out and train
        assert not train & held_out


def test_the_split_ignores_the_phrasing_and_the_seed():
    task = make_task("arithmetic")
    items = TaskSampler(task, seed=3, split="eval", difficulty=2).take(50)
    assert all(is_eval_item(item, 0.2) for item in items)
    other_seed = TaskSampler(task, seed=4, split="train", difficulty=2).take(500, unique=False)
    assert not {i.canonical for i in items} & {i.canonical for i in other_seed}
    # the held-out share of the item space is about eval_fraction
    rng = np.random.default_rng(5)
    everything = [task.sample(rng, 4) for _ in range(2000)]
    share = sum(is_eval_item(item, 0.2) for item in everything) / len(everything)
    assert 0.15 < share < 0.25


def test_a_split_is_reproducible_from_its_seed():
    task = make_task("arithmetic")
    assert TaskSampler(task, seed=9, split="eval", difficulty=3).take(5) == TaskSampler(
        task, seed=9, split="eval", difficulty=3
    ).take(5)


def test_take_unique_gives_distinct_items_and_fails_clearly_when_there_are_too_few():
    task = make_task("arithmetic")
    items = TaskSampler(task, seed=0, split="eval", difficulty=1).take(15)
    assert len({item.canonical for item in items}) == 15
    # level 1 has 100 sums; about 20 are held out
    with pytest.raises(RuntimeError, match="fewer than 90 distinct eval items at difficulty 1"):
        TaskSampler(task, seed=0, split="eval", difficulty=1, max_tries=200).take(90)


def test_auto_difficulty_follows_the_curriculum():
    task = make_task("arithmetic")
    sampler = TaskSampler(task, seed=0, difficulty="auto", curriculum=Curriculum(task.difficulties, window=4))
    assert sampler.difficulty == 1 and sampler.next().difficulty == 1
    for _ in range(4):
        sampler.update(1.0)
    assert sampler.difficulty == 2 and sampler.next().difficulty == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"split": "test"}, "Expected split to be one of"),
        ({"split": "eval", "difficulty": "auto"}, "Expected an int difficulty for split='eval'"),
        ({"difficulty": 8}, r"Expected difficulty for task 'arithmetic' to be one of \[1, "),
        ({"eval_fraction": 1.0}, r"Expected eval_fraction to be in \(0, 1\)"),
        ({"seed": -1}, "Expected seed to be an int >= 0"),
        ({"difficulty": 1, "curriculum": Curriculum([1, 2])}, "Expected curriculum only with difficulty='auto'"),
    ],
    ids=["split", "eval-auto", "difficulty", "fraction", "seed", "curriculum"],
)
def test_bad_sampler_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TaskSampler(make_task("arithmetic"), **{"seed": 0, **kwargs})
