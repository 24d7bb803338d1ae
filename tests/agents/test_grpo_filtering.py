"""GRPO's zero-variance filtering (``max_resample_rounds``): groups whose returns are all equal are replaced."""

from __future__ import annotations

import pytest

from agents import GRPO
from textgen_env import TextGenVectorEnv
from textgen_env.rewards import DiversityReward

PROMPTS = ["the movie was", "i think it was", "one more", "and then"]


def odd_letters(prompt: str, completion: str, done: bool) -> float:
    """1 when the completion's character count is odd: about half the completions, unrelated to the prompt."""
    return float(len(completion) % 2)


def constant(prompt: str, completion: str, done: bool) -> float:
    return 0.5


def make_env(tiny, reward, num_envs: int = 8, **kwargs) -> TextGenVectorEnv:
    model, tokenizer = tiny
    return TextGenVectorEnv(
        num_envs=num_envs, model=model, tokenizer=tokenizer, reward=reward, max_new_tokens=4, prompts=PROMPTS, **kwargs
    )


def grpo(env, **kwargs) -> GRPO:
    settings = dict(group_size=2, episodes_per_iteration=8, minibatch_size=8, learning_rate=1e-4, seed=0)
    return GRPO(env, **(settings | kwargs))


def test_every_kept_group_has_returns_that_differ(tiny):
    agent = grpo(make_env(tiny, odd_letters), max_resample_rounds=6)
    for _ in range(3):
        before = agent.num_timesteps
        rollout = agent.collect_for_update()
        stats = agent.update(rollout)
        assert len(rollout) >= 8
        assert rollout.group_ids is not None
        for group in rollout.group_ids.unique():
            members = rollout.scores[rollout.group_ids == group]
            assert len(members) == 2 and members.unique().numel() == 2  # whole groups, never equal returns
        assert stats["rollout/zero_variance_kept"] == 0.0  # enough extra rounds: no equal group stayed
        assert 0.0 <= stats["rollout/zero_variance_groups"] < 1.0 and stats["rollout/dropped_groups"] >= 0.0
        spent = agent.num_timesteps - before  # the budget counts the tokens of dropped groups too
        assert spent >= int(rollout.completion_mask.sum())
        agent.iteration += 1


def test_collect_itself_never_filters(tiny):
    """Measurements go through `collect`: it keeps the equal groups that training would drop."""
    agent = grpo(make_env(tiny, constant), max_resample_rounds=2)
    rollout = agent.collect()
    assert len(rollout) == 8 and agent.num_timesteps == int(rollout.completion_mask.sum())


def test_without_filtering_every_group_stays(tiny):
    agent = grpo(make_env(tiny, constant))
    rollout = agent.collect_for_update()
    stats = agent.update(rollout)
    assert len(rollout) == 8 and agent.num_timesteps == int(rollout.completion_mask.sum())
    assert "rollout/dropped_groups" not in stats and "rollout/zero_variance_groups" not in stats


def test_when_every_group_is_equal_the_dropped_ones_fill_the_rollout(tiny):
    agent = grpo(make_env(tiny, constant), max_resample_rounds=2)
    rollout = agent.collect_for_update()
    stats = agent.update(rollout)
    assert len(rollout) == 8  # filled up to episodes_per_iteration with dropped groups
    assert stats["rollout/zero_variance_groups"] == 1.0
    assert stats["rollout/dropped_groups"] == 8.0 and stats["rollout/zero_variance_kept"] == 4.0  # of 3 x 4 groups
    assert agent.num_timesteps == 3 * 8 * 4  # every generated token of the 3 rounds counts (4 tokens, no EOS early)


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_a_bad_round_count_is_refused(tiny, bad):
    with pytest.raises(ValueError, match="Expected max_resample_rounds to be an int >= 0"):
        grpo(make_env(tiny, constant), max_resample_rounds=bad)


def test_refused_with_a_group_reward(tiny):
    with pytest.raises(ValueError, match="Expected max_resample_rounds=0 with a group reward"):
        grpo(make_env(tiny, DiversityReward()), max_resample_rounds=1)


def test_refused_on_conversations(tiny):
    import gymnasium as gym

    model, tokenizer = tiny
    env = gym.make_vec("TextDialogue-v0", num_envs=4, model=model, tokenizer=tokenizer, max_reply_tokens=4)
    with pytest.raises(ValueError, match="Expected max_resample_rounds=0 on TextDialogue-v0"):
        grpo(env, max_resample_rounds=1, episodes_per_iteration=4, minibatch_size=4)
