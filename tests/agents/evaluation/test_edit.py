"""Held-out evaluation of the edit agents (`agents.evaluation.edit`): paired by seed, KL 0 at the untrained policy."""

from __future__ import annotations

import pytest

from agents.edit import EditPPO
from agents.evaluation import evaluate_edit, paired_gain

DRAFTS = ["the movie was very slow and sad .", "the plot was long , the cast was sad ."]


def test_same_seed_same_episodes_kl_zero_untrained_and_positive_after_training(make_edit_vec_env):
    env = make_edit_vec_env(3, reward="keyword", reward_kwargs={"avoid": ["very", "slow", "sad"]}, max_edits=2)
    agent = EditPPO(env, episodes_per_iteration=3, minibatch_size=1, learning_rate=1e-2)
    before = evaluate_edit(agent, env, DRAFTS, samples_per_draft=2, seed=5)
    again = evaluate_edit(agent, env, DRAFTS, samples_per_draft=2, seed=5)
    assert before.rewards == again.rewards and before.samples == again.samples  # the agent's generator is restored
    assert before.kls == [0.0] * 4 and before.num_prompts == 2 and before.prompt_index == [0, 0, 1, 1]
    for sample, gain in zip(before.samples, before.rewards):
        draft, text = sample["draft"], sample["text"]
        scores = env.reward(["", ""], [draft, text], [True, True])
        assert gain == pytest.approx(scores[1] - scores[0])
    agent.learn(10_000, callback=lambda trained, stats: trained.iteration < 3)
    after = evaluate_edit(agent, env, DRAFTS, samples_per_draft=2, seed=5)
    assert min(after.kls) > 0
    assert paired_gain(before, after).n == 2


def test_bad_arguments(make_edit_vec_env):
    agent = EditPPO(make_edit_vec_env(1))
    with pytest.raises(ValueError, match=r"Expected samples_per_draft to be an int >= 1, got 0"):
        evaluate_edit(agent, agent.env, DRAFTS, samples_per_draft=0)
    with pytest.raises(ValueError, match=r"Expected at least one held-out draft, got none"):
        evaluate_edit(agent, agent.env, [])
