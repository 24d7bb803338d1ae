"""GRPO's group-reward hook: the fallback the env paid is replaced by the group score, and only that."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents import GRPO
from agents.grpo import apply_group_rewards
from agents.rollout import RolloutBatch
from textgen_env.rewards import DiversityReward, Gate, KeywordReward, make_reward


def _rollout(completions: list[str], group_ids: list[int], scores: list[float]) -> RolloutBatch:
    n = len(completions)
    batch = RolloutBatch.from_token_lists([[1, 2]] * n, [[3, 4, 5]] * n, 0, prompts=["Q"] * n, completions=completions)
    batch.scores = torch.tensor(scores, dtype=torch.float64)
    batch.rewards[:, 2] = torch.tensor(scores, dtype=torch.float32)
    batch.group_ids = torch.tensor(group_ids)
    return batch


def test_group_score_replaces_the_fallback_in_scores_and_last_token_rewards():
    diversity = DiversityReward(n=1)
    reward = make_reward({"keyword": 1.0, diversity: 0.5})
    completions = ["a a", "a a", "b c", "d e"]
    fallback = diversity(["Q"] * 4, completions, [True] * 4)  # what the env paid: [0.5, 0.5, 1, 1]
    rollout = _rollout(completions, [0, 0, 1, 1], list(0.5 * fallback))
    stats = apply_group_rewards(reward, rollout)
    group = np.array([0.0, 0.0, 1.0, 1.0])  # identical pair, disjoint pair
    np.testing.assert_allclose(rollout.scores.numpy(), 0.5 * group)
    np.testing.assert_allclose(rollout.rewards[:, 2].numpy(), 0.5 * group)
    assert stats == {"rollout/group/diversity": pytest.approx(0.5)}


def test_rewards_without_group_parts_are_left_alone():
    rollout = _rollout(["a", "a"], [0, 0], [1.0, 2.0])
    assert apply_group_rewards(make_reward("keyword"), rollout) == {}
    np.testing.assert_allclose(rollout.scores.numpy(), [1.0, 2.0])


def test_nested_group_rewards_keep_their_fallback_with_a_warning():
    rollout = _rollout(["a", "a"], [0, 0], [1.0, 2.0])
    with pytest.warns(UserWarning, match="keeps their per-completion fallback"):
        assert apply_group_rewards(Gate(DiversityReward(), when=KeywordReward()), rollout) == {}
    np.testing.assert_allclose(rollout.scores.numpy(), [1.0, 2.0])


def test_grpo_trains_on_group_scores(keyword_env):
    env = keyword_env(num_envs=4, reward=DiversityReward(n=1), reward_kwargs=None)
    agent = GRPO(env, group_size=4, episodes_per_iteration=4, minibatch_size=4)
    rollout = agent.collect()
    paid = rollout.scores.clone()
    stats = agent.update(rollout)
    expected = DiversityReward(n=1).score_group(rollout.prompts, rollout.completions)
    np.testing.assert_allclose(rollout.scores.numpy(), expected, atol=1e-9)
    assert "rollout/group/diversity" in stats
    assert paid.shape == rollout.scores.shape
