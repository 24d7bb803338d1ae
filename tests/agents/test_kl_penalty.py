"""The KL penalty pulls the policy toward the reference, in every agent and in the SB3 recipe (tiny model).

With a task reward of 0 the penalty is the whole objective, so its optimum is policy = reference:
* a policy that starts away from the reference comes back (the exact KL at the prompts falls under half its start);
* a policy that starts at the reference stays there (KL 0, the same completion lengths).
Before the fix, PPO and REINFORCE subtracted the exact per-token KL (a function of the state only) from the rewards;
that term cancels out of the policy gradient and the first test fails: the KL rose from 0.5 to 27 nats.
"""

from __future__ import annotations

import copy

import pytest
import torch
from stable_baselines3 import PPO as SB3PPO

from agents import GRPO, PPO, REINFORCE
from agents.evaluation import evaluate
from agents.policy import LMPolicy
from agents.sb3 import KLPenaltyCallback, LMActorCriticPolicy, LMSource, make_sb3_env
from textgen_env import TextGenVectorEnv

PROMPTS = ["the movie was", "i think it was"]
TOKENS = 6


def zero_reward(prompt: str, completion: str, done: bool) -> float:
    return 0.0


def drifted(model: torch.nn.Module, scale: float = 3.0, seed: int = 1) -> torch.nn.Module:
    """A copy of `model` whose output embeddings carry noise: about 0.5 nats of KL per 6-token completion."""
    copied = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        weight = copied.get_output_embeddings().weight
        weight.add_(torch.randn(weight.shape, generator=generator) * scale * weight.std())
    return copied


def zero_reward_env(tiny, num_envs: int = 8) -> TextGenVectorEnv:
    model, tokenizer = tiny
    return TextGenVectorEnv(
        num_envs=num_envs, model=model, tokenizer=tokenizer, reward=zero_reward, max_new_tokens=TOKENS, prompts=PROMPTS
    )


def kl_and_length(lm, tiny) -> tuple[float, float]:
    """Exact KL(lm || reference) per completion and mean length, over 16 samples of each prompt (fixed seed)."""
    model, tokenizer = tiny
    policy = LMPolicy(lm, tokenizer, value_head=False, reference=model)
    result = evaluate(policy, zero_reward_env(tiny, 1), PROMPTS, samples_per_prompt=16, seed=0)
    return result.kl.mean, result.length.mean


AGENTS = [(PPO, {}), (REINFORCE, {"epochs": 1}), (GRPO, {})]


def penalty_only_agent(tiny, cls, options: dict, policy_model):
    """`cls` on the zero-reward env with kl_coef 0.5: policy_model (None: a copy of the reference) vs the tiny model."""
    model, _ = tiny
    return cls(
        zero_reward_env(tiny),
        model=policy_model,
        reference=model,
        kl_coef=0.5,
        learning_rate=3e-2,
        episodes_per_iteration=16,
        minibatch_size=8,
        seed=0,
        **options,
    )


@pytest.mark.parametrize("cls, options", AGENTS, ids=["ppo", "reinforce", "grpo"])
def test_penalty_alone_brings_a_drifted_policy_back(tiny, cls, options):
    model, _ = tiny
    agent = penalty_only_agent(tiny, cls, options, drifted(model))
    start, _ = kl_and_length(agent.policy.model, tiny)
    assert start > 0.3
    agent.learn(40 * 16 * TOKENS)
    end, _ = kl_and_length(agent.policy.model, tiny)
    assert end < 0.5 * start, f"KL {start:.3f} -> {end:.3f}"


@pytest.mark.parametrize("cls, options", AGENTS, ids=["ppo", "reinforce", "grpo"])
def test_policy_at_the_reference_does_not_move(tiny, cls, options):
    agent = penalty_only_agent(tiny, cls, options, None)
    start_kl, start_length = kl_and_length(agent.policy.model, tiny)
    agent.learn(20 * 16 * TOKENS)
    end_kl, end_length = kl_and_length(agent.policy.model, tiny)
    assert start_kl == pytest.approx(0.0, abs=1e-6) and end_kl == pytest.approx(0.0, abs=1e-6)
    assert end_length == start_length


def sb3_ppo(tiny, lm) -> SB3PPO:
    model, tokenizer = tiny
    env = make_sb3_env(
        4,
        model=model,
        tokenizer=tokenizer,
        reward=zero_reward,
        max_new_tokens=TOKENS,
        max_prompt_tokens=8,
        prompts=PROMPTS,
        seed=0,
        reference_logprobs=True,
    )
    return SB3PPO(
        LMActorCriticPolicy,
        env,
        n_steps=24,
        batch_size=48,
        n_epochs=4,
        learning_rate=1e-2,
        ent_coef=0.0,
        seed=0,
        policy_kwargs={"model": LMSource(lm), "tokenizer": tokenizer},
    )


@pytest.mark.slow
def test_sb3_recipe_brings_a_drifted_policy_back(tiny):
    model, _ = tiny
    ppo = sb3_ppo(tiny, drifted(model))
    start, _ = kl_and_length(ppo.policy.lm, tiny)
    ppo.learn(4000, callback=KLPenaltyCallback(kl_coef=0.5))
    end, _ = kl_and_length(ppo.policy.lm, tiny)
    assert end < 0.5 * start, f"KL {start:.3f} -> {end:.3f}"


def test_sb3_recipe_at_the_reference_does_not_move(tiny):
    model, _ = tiny
    ppo = sb3_ppo(tiny, model)
    start_kl, start_length = kl_and_length(ppo.policy.lm, tiny)
    ppo.learn(960, callback=KLPenaltyCallback(kl_coef=0.5))
    end_kl, end_length = kl_and_length(ppo.policy.lm, tiny)
    assert start_kl == pytest.approx(0.0, abs=1e-6) and end_kl == pytest.approx(0.0, abs=1e-6)
    assert end_length == start_length


def test_sb3_recipe_needs_reference_logprobs_and_no_env_kl(tiny):
    model, tokenizer = tiny
    for settings in ({"reference_logprobs": False}, {"reference_logprobs": True, "kl_coef": 0.1}):
        env = make_sb3_env(
            2, model=model, tokenizer=tokenizer, reward=zero_reward, max_new_tokens=4, prompts=PROMPTS, **settings
        )
        ppo = SB3PPO(
            LMActorCriticPolicy,
            env,
            n_steps=4,
            batch_size=8,
            policy_kwargs={"model": LMSource(model), "tokenizer": tokenizer},
        )
        with pytest.raises(ValueError, match=r"Expected envs built with reference_logprobs=True and kl_coef=0"):
            ppo.learn(8, callback=KLPenaltyCallback(kl_coef=0.1))
