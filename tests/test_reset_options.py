"""reset(options=...) bad input: unknown keys, bad masks and prompts get errors that name the option."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"promt": "x"}, ValueError, r"Expected options keys among \['prompt', 'item'\], got unknown key\(s\) \['pr"),
        ({"reset_mask": np.ones(1, bool)}, ValueError, r"\['reset_mask'\] \('reset_mask' is an option of the vector"),
        ({"prompt": 3}, TypeError, r"Expected options\['prompt'\] to be a str, got int 3"),
        ({"prompt": ["a"]}, TypeError, r"Expected options\['prompt'\] to be a str, got list"),
        (["prompt"], TypeError, r"Expected options to be a dict or None, got list"),
    ],
    ids=["unknown-key", "mask-on-single-env", "prompt-int", "prompt-list", "not-a-dict"],
)
def test_single_env_bad_options(make_env, options, error, match):
    with pytest.raises(error, match=match):
        make_env().reset(seed=0, options=options)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"seed": 1}, ValueError, r"Expected options keys among \['prompt', 'item', 'reset_mask'\], got unknown key"),
        ({"reset_mask": [True, False]}, TypeError, r"Expected options\['reset_mask'\] to be a numpy array, got list"),
        ({"reset_mask": np.array([1, 0])}, TypeError, r"options\['reset_mask'\] to have dtype bool, got int64"),
        ({"reset_mask": np.ones(3, bool)}, ValueError, r"options\['reset_mask'\] of shape \(2,\), got \(3,\)"),
        ({"reset_mask": np.ones((2, 1), bool)}, ValueError, r"options\['reset_mask'\] of shape \(2,\), got \(2, 1\)"),
        ({"reset_mask": np.zeros(2, bool)}, ValueError, r"options\['reset_mask'\] to hold at least one True"),
        ({"prompt": ["a"]}, ValueError, r"Expected options\['prompt'\] to hold 2 prompts \(one per env\), got 1"),
        ({"prompt": ["a", 7]}, TypeError, r"Expected options\['prompt'\]\[1\] to be a str, got int 7"),
        ({"prompt": 7}, TypeError, r"Expected options\['prompt'\] to be a str or a list of 2 str/None, got int"),
    ],
    ids=[
        "unknown-key",
        "mask-list",
        "mask-int",
        "mask-too-long",
        "mask-2d",
        "mask-all-false",
        "prompts-too-few",
        "prompt-entry-int",
        "prompt-int",
    ],
)
def test_vector_env_bad_options(make_vec_env, options, error, match):
    vec = make_vec_env(2)
    vec.reset(seed=0)
    with pytest.raises(error, match=match):
        vec.reset(options=options)


def test_partial_reset_needs_a_full_reset_first(make_vec_env):
    vec = make_vec_env(2)
    with pytest.raises(gym.error.ResetNeeded, match=r"Expected a reset of every slot before a partial one"):
        vec.reset(seed=0, options={"reset_mask": np.array([True, False])})
    vec.reset(seed=0, options={"reset_mask": np.array([True, True])})  # a full mask is a full reset
    assert not vec.batch.done.any()


def test_options_are_not_modified(make_vec_env):
    options = {"reset_mask": np.array([True, True]), "prompt": "the dog"}
    make_vec_env(2).reset(seed=0, options=options)
    assert set(options) == {"reset_mask", "prompt"}


def test_a_task_env_starts_from_given_items_and_keeps_them_out_of_the_curriculum(tiny):
    from textgen_env import TextGenVectorEnv
    from textgen_env.tasks import TaskSampler

    model, tokenizer = tiny
    env = TextGenVectorEnv(
        num_envs=2, model=model, tokenizer=tokenizer, task="arithmetic", difficulty="auto", max_new_tokens=2
    )
    items = [TaskSampler(env.task, seed=s, split="eval", difficulty=2).next() for s in (0, 1)]
    _, info = env.reset(seed=0, options={"item": items})
    assert list(info["task"]["question"]) == [item.question for item in items]
    log = env.task_log()
    for _ in range(2):
        env.step_unfinished(np.zeros(2, dtype=np.int64))
    assert env.task_log() == log  # scored (info["task"] has "correct"), but the curriculum did not move
    _, info = env.reset(seed=0, options={"item": items[0]})  # one item for every slot
    assert info["task"]["question"][1] == items[0].question


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"item": "3 + 4"}, TypeError, r"Expected options\['item'\] to be a textgen_env.tasks.TaskItem, got str"),
        ({"item": [None]}, ValueError, r"Expected options\['item'\] to hold 2 items \(one per env\), got 1"),
    ],
)
def test_bad_item_options(tiny, options, error, match):
    from textgen_env import TextGenVectorEnv

    model, tokenizer = tiny
    env = TextGenVectorEnv(num_envs=2, model=model, tokenizer=tokenizer, task="arithmetic", max_new_tokens=2)
    with pytest.raises(error, match=match):
        env.reset(seed=0, options=options)


def test_an_item_option_needs_a_task_env(tiny):
    from textgen_env import TextGenVectorEnv
    from textgen_env.tasks import TaskSampler, make_task

    model, tokenizer = tiny
    env = TextGenVectorEnv(num_envs=1, model=model, tokenizer=tokenizer, prompts=["a"], max_new_tokens=2)
    item = TaskSampler(make_task("arithmetic"), seed=0, split="eval", difficulty=1).next()
    with pytest.raises(ValueError, match="Expected an item option only in a task env"):
        env.reset(seed=0, options={"item": [item]})
    with pytest.raises(ValueError, match=r"Expected options\['prompt'\] or options\['item'\], got both"):
        env.reset(seed=0, options={"item": [item], "prompt": "x"})
