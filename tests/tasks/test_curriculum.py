"""Curriculum: the level moves to keep the running success rate in the target band, deterministically."""

from __future__ import annotations

import math

import numpy as np
import pytest

from textgen_env.tasks import Curriculum


def test_success_above_the_band_moves_up_and_below_moves_down():
    curriculum = Curriculum([1, 2, 3], target=(0.4, 0.7), window=4)
    for _ in range(4):
        curriculum.update(1.0)
    assert curriculum.difficulty == 2 and curriculum.state()["window_size"] == 0
    for outcome in (1, 0, 1, 0):  # 0.5: inside the band, stays
        curriculum.update(outcome)
    assert curriculum.difficulty == 2
    for _ in range(4):
        curriculum.update(0.0)
    assert curriculum.difficulty == 1
    assert curriculum.state()["level_changes"] == 2 and curriculum.state()["updates"] == 12


def test_the_level_stays_within_the_ends():
    curriculum = Curriculum([1, 2], window=2)
    for _ in range(10):
        curriculum.update(0.0)
    assert curriculum.difficulty == 1
    for _ in range(10):
        curriculum.update(1.0)
    assert curriculum.difficulty == 2


def test_a_simulated_learner_settles_where_its_success_is_in_the_band():
    # a learner that solves level L with probability 1 - 0.15 L: 0.85, 0.7, 0.55, 0.4, 0.25
    def run(seed):
        rng = np.random.default_rng(seed)
        curriculum = Curriculum([1, 2, 3, 4, 5], target=(0.5, 0.75), window=40)
        levels = []
        for _ in range(4000):
            curriculum.update(float(rng.random() < 1 - 0.15 * curriculum.difficulty))
            levels.append(curriculum.difficulty)
        return levels

    levels = run(0)
    assert levels == run(0)  # deterministic given the outcomes
    late = levels[2000:]
    assert {2, 3} >= set(np.unique(late)) - {1, 4} and np.mean([lv in (2, 3) for lv in late]) > 0.8


def test_state_is_loggable():
    state = Curriculum([1, 2], start=2).state()
    assert state["difficulty"] == 2 and math.isnan(state["success_rate"])
    assert set(state) == {"difficulty", "success_rate", "window_size", "level_changes", "updates"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"levels": []}, "Expected levels to be a non-empty sequence of ints"),
        ({"target": (0.8, 0.5)}, "Expected target to be .low, high. with low < high"),
        ({"target": (0.5, 1.5)}, r"Expected target\[1\] to be a number in \[0, 1\]"),
        ({"window": 0}, "Expected window to be an int >= 1"),
        ({"start": 9}, r"Expected start to be one of \[1, 2, 3\]"),
    ],
    ids=["levels", "band-order", "band-range", "window", "start"],
)
def test_bad_curriculum_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Curriculum(**{"levels": [1, 2, 3], **kwargs})


def test_an_outcome_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match=r"Expected correct to be a number in \[0, 1\]"):
        Curriculum([1]).update(2.0)
