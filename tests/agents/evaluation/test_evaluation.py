"""Evaluation with error bars: samples per prompt, shared seeds that pair before and after, JSON round trip."""

from __future__ import annotations

import copy

import pytest
import torch

from agents.evaluation import EvalResult, evaluate, paired_gain
from agents.policy import LMPolicy
from textgen_env import TextGenVectorEnv

PROMPTS = ["the movie was", "i think it was", "the story is"]


@pytest.fixture
def policy_and_env(tiny):
    model, tokenizer = tiny
    env = TextGenVectorEnv(
        num_envs=1,
        model=model,
        tokenizer=tokenizer,
        reward="keyword",
        reward_kwargs={"keywords": ["great"]},
        max_new_tokens=5,
        prompts=PROMPTS,
    )
    return LMPolicy(copy.deepcopy(model), tokenizer, value_head=False, reference=model), env


def test_samples_per_prompt_and_summaries(policy_and_env):
    policy, env = policy_and_env
    result = evaluate(policy, env, PROMPTS, samples_per_prompt=4, seed=3, batch_size=5)
    assert len(result.rewards) == len(result.kls) == len(result.samples) == 12
    assert result.prompt_index == [0] * 4 + [1] * 4 + [2] * 4
    assert result.reward.n == result.kl.n == 3 and result.num_prompts == 3 and result.samples_per_prompt == 4
    assert result.kl.mean == pytest.approx(0.0, abs=1e-6)  # policy == reference
    summary = result.summary()
    assert summary["completions"] == 12 and {"reward_se", "kl_se", "length", "distinct2"} <= set(summary)
    assert EvalResult.from_dict(result.to_dict()) == result


def test_same_seed_pairs_completions_and_a_changed_policy_is_measured(policy_and_env):
    policy, env = policy_and_env
    before = evaluate(policy, env, PROMPTS, samples_per_prompt=4, seed=0, batch_size=5)
    again = evaluate(policy, env, PROMPTS, samples_per_prompt=4, seed=0, batch_size=5)
    assert [s["completion"] for s in again.samples] == [s["completion"] for s in before.samples]
    assert paired_gain(before, again) == (0.0, 0.0, 3)
    other_seed = evaluate(policy, env, PROMPTS, samples_per_prompt=4, seed=1, batch_size=5)
    assert [s["completion"] for s in other_seed.samples] != [s["completion"] for s in before.samples]
    with torch.no_grad():  # a sharper policy: other completions, other rewards
        policy.model.get_output_embeddings().weight.mul_(4.0)
    after = evaluate(policy, env, PROMPTS, samples_per_prompt=4, seed=0, batch_size=5)
    gain = paired_gain(before, after)
    assert after.kl.mean > 0.1 and gain.se > 0
    assert gain.mean == pytest.approx(after.reward.mean - before.reward.mean, abs=1e-12)  # equal groups: two ways
    with pytest.raises(ValueError, match=r"Expected two evaluations of the same prompts, samples_per_prompt and seed"):
        paired_gain(before, other_seed)
    with pytest.raises(ValueError, match=r"Expected samples_per_prompt to be an int >= 1, got 0"):
        evaluate(policy, env, PROMPTS, samples_per_prompt=0)


def test_a_policy_trained_with_bf16_autocast_is_evaluated_in_float32(policy_and_env):
    policy, env = policy_and_env
    with torch.no_grad():  # away from the reference, so that the KL would show bfloat16 rounding
        policy.model.get_output_embeddings().weight.mul_(4.0)
    in_float32 = evaluate(policy, env, PROMPTS, samples_per_prompt=4, seed=0, batch_size=5)
    policy.bf16_autocast = True
    assert evaluate(policy, env, PROMPTS, samples_per_prompt=4, seed=0, batch_size=5) == in_float32
    assert policy.bf16_autocast  # restored after the evaluation
