"""Rubric composition: Sequential fails fast, Gate counts a reward only past a threshold, components sum to it."""

from __future__ import annotations

import numpy as np
import pytest

from textgen_env import TextGenEnv
from textgen_env.rewards import (
    FunctionReward,
    Gate,
    KeywordReward,
    RegexReward,
    Reward,
    Sequential,
    make_reward,
)

PROMPTS = ["2+5="] * 4
ANSWERS = ["7", "seven", "8", "7 7"]


class CountingReward(Reward):
    """Records which completions it was asked to score."""

    def __init__(self, name: str, value: float = 1.0) -> None:
        self.name, self.value, self.seen = name, value, []

    def __call__(self, prompts, completions, dones):
        self.seen.extend(completions)
        return np.full(len(completions), self.value)


def is_number():
    return RegexReward(patterns=r"^\d+$")


def test_sequential_stops_each_completion_at_its_first_failed_stage():
    later = CountingReward("later")
    rubric = Sequential((is_number(), 1.0), (KeywordReward(keywords=["7"]), 1.0), later)
    scores = rubric(PROMPTS, ANSWERS, [True] * 4)
    # '7': number, has 7, later -> 3; 'seven': fails the first stage -> 0; '8': passes 1, fails 2 -> 1; '7 7': 0
    np.testing.assert_allclose(scores, [3.0, 0.0, 1.0, 0.0])
    assert later.seen == ["7"]  # fail fast: the last stage scored only the completion that passed every gate


def test_sequential_components_are_weighted_stages_that_sum_to_the_score():
    rubric = Sequential((is_number(), 1.0), KeywordReward(keywords=["7"]), weights=[0.5, 2.0])
    parts = rubric.components(PROMPTS, ANSWERS, [True] * 4)
    assert set(parts) == {"regex", "keyword"} == set(rubric.component_names)
    np.testing.assert_allclose(parts["regex"], [0.5, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(parts["keyword"], [2.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(sum(parts.values()), rubric(PROMPTS, ANSWERS, [True] * 4))


def test_gate_counts_the_reward_only_where_the_gate_passes():
    correct = CountingReward("correct", value=1.0)
    rubric = Gate(correct, when=is_number(), threshold=1.0)
    np.testing.assert_allclose(rubric(PROMPTS, ANSWERS, [True] * 4), [1.0, 0.0, 1.0, 0.0])
    assert correct.seen == ["7", "8"]
    assert rubric.component_names == ("correct",)  # gate_weight 0: the gate itself neither counts nor reports


def test_gate_weight_makes_the_gate_count_and_report():
    rubric = Gate(KeywordReward(keywords=["7"]), when=is_number(), threshold=1.0, gate_weight=0.25)
    parts = rubric.components(PROMPTS, ANSWERS, [True] * 4)
    np.testing.assert_allclose(parts["regex"], [0.25, 0.0, 0.25, 0.0])
    np.testing.assert_allclose(parts["keyword"], [1.0, 0.0, 0.0, 0.0])


def test_rubrics_nest_inside_weighted_mixes_and_each_other():
    gated = Gate(KeywordReward(keywords=["7"]), when=is_number(), name="gated")
    mix = make_reward({gated: 1.0, FunctionReward(lambda p, c, d: float(len(c)), name="chars"): 0.1})
    parts = mix.components(PROMPTS, ANSWERS, [True] * 4)
    np.testing.assert_allclose(parts["keyword"], [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(parts["chars"], [0.1, 0.5, 0.1, 0.3])


def test_gate_by_registered_name_with_kwargs():
    rubric = make_reward(
        "gate",
        {"reward": "keyword", "reward_kwargs": {"keywords": ["7"]}, "when": "regex", "when_kwargs": {"patterns": "^7"}},
    )
    assert isinstance(rubric, Gate)
    np.testing.assert_allclose(rubric(PROMPTS, ANSWERS, [True] * 4), [1.0, 0.0, 0.0, 1.0])


def test_env_reports_each_rubric_part_in_info(tiny):
    model, tokenizer = tiny
    rubric = Gate("keyword", when="length", threshold=-1.0, gate_weight=0.5, reward_kwargs={"keywords": ["the"]})
    env = TextGenEnv(model=model, tokenizer=tokenizer, reward=rubric, max_new_tokens=3, prompts=["the movie was"])
    env.reset(seed=0)
    done, info, total = False, {}, 0.0
    while not done:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        total += reward
        done = terminated or truncated
    components = info["reward_components"]
    assert set(components) == {"length", "keyword"}
    assert sum(components.values()) == pytest.approx(total)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Sequential(), "at least one stage"),
        (lambda: Sequential((is_number(), 1.0, 2.0)), "as \\(reward, threshold\\)"),
        (lambda: Sequential((is_number(), float("nan"))), "threshold of stage 0 to be a finite number"),
        (lambda: Sequential(is_number(), weights=[1.0, 2.0]), "one weight per stage"),
        (lambda: Sequential(is_number(), RegexReward(patterns="x")), "distinct component names"),
        (lambda: Gate("keyword", when="no-such-reward"), "Expected reward to be one of"),
    ],
    ids=["empty", "triple", "nan-threshold", "weights", "duplicate-names", "unknown-name"],
)
def test_bad_rubrics_raise_clear_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()
