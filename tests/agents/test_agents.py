"""Every agent learns a simple task through the env loop; save/load, exact resume and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agents import AGENTS, DQN, GRPO, PPO, REINFORCE, make_agent
from agents.functional import selective_log_softmax

LEARNING = {
    "reinforce": (REINFORCE, {"learning_rate": 1e-2}),
    "ppo": (PPO, {"learning_rate": 3e-3, "epochs": 4}),  # 1e-2 collapses on some seeds and CPUs
    "grpo": (GRPO, {"learning_rate": 1e-2, "group_size": 4}),
    # Q-values start as the tiny model's near-zero logits: a low Boltzmann temperature makes a reward of 1 count
    "dqn": (
        DQN,
        {
            "learning_rate": 3e-3,
            "gradient_steps": 16,
            "learning_starts": 8,
            "tau": 0.05,
            "exploration_temperature": 0.1,
        },
    ),
}
ITERATIONS = {"reinforce": 20, "ppo": 20, "grpo": 20, "dqn": 30}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LEARNING), ids=list(LEARNING))
def test_agent_raises_reward_and_changes_parameters(keyword_env, name):
    cls, options = LEARNING[name]
    agent = cls(keyword_env(), episodes_per_iteration=16, minibatch_size=8, kl_coef=0.0, seed=0, **options)
    before = [p.detach().clone() for p in agent.policy.trainable_parameters()]
    history = []
    agent.learn(16 * 4 * ITERATIONS[name], callback=lambda a, stats: history.append(stats))
    rewards = [s["rollout/reward_mean"] for s in history]
    assert np.mean(rewards[:3]) < 0.2
    assert np.mean(rewards[-3:]) > np.mean(rewards[:3]) + 0.5, rewards
    assert all(math.isfinite(v) for s in history for v in s.values())
    changed = [not torch.equal(b, p) for b, p in zip(before, agent.policy.trainable_parameters())]
    assert all(changed[:-2]) or sum(changed) > len(changed) // 2


def scored_by_update(agent, rollout):
    """(N, T) log-probs and values of the chosen tokens by the update's one-pass forward, and the mask."""
    batch = rollout.to(agent.policy.device)
    with torch.no_grad():
        out = agent.policy.score(batch, temperature=agent.config.temperature)
    mask = batch.completion_mask
    values = out.values * mask if out.values is not None else None
    return selective_log_softmax(out.logits, batch.actions) * mask, values, mask


def reference_kl(agent, rollout):
    """(N, T) exact per-token KL of the policy to the reference (`LMPolicy.score_reference`)."""
    agent.policy.score_reference(rollout, temperature=agent.config.temperature, chunk_size=agent.config.minibatch_size)
    return rollout.kl


def vary_last_rewards(rollout):
    """Rewards that differ between episodes (i % 3 on each last token), so that an update has a gradient."""
    for i, n in enumerate(rollout.completion_lengths.tolist()):
        rollout.rewards[i, :n] = 0.0
        rollout.rewards[i, n - 1] = float(i % 3)
        rollout.scores[i] = float(i % 3)


def test_rollout_logprobs_match_the_one_pass_update_scoring(keyword_env):
    """Log-probs taken with the KV cache during the rollout equal those of the whole-episode forward."""
    agent = PPO(keyword_env(max_new_tokens=6), episodes_per_iteration=8, minibatch_size=4, kl_coef=0.0)
    rollout = agent.collect()
    logprobs, values, _ = scored_by_update(agent, rollout)
    torch.testing.assert_close(logprobs, rollout.logprobs, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(values, rollout.values, atol=1e-5, rtol=1e-4)


def test_score_uses_one_forward_per_minibatch(keyword_env):
    agent = PPO(keyword_env(), episodes_per_iteration=8, minibatch_size=8, kl_coef=0.0)
    rollout = agent.collect()
    calls = []
    handle = agent.policy.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        batch = rollout.to(agent.policy.device)
        out = agent.policy.score(batch)
    finally:
        handle.remove()
    assert len(calls) == 1 and out.logits.shape[:2] == batch.completion_mask.shape
    logp = selective_log_softmax(out.logits, batch.actions)
    assert torch.isfinite(logp[batch.completion_mask]).all()


def test_grpo_groups_share_prompts(keyword_env):
    agent = GRPO(keyword_env(prompts="movie_reviews"), group_size=4, episodes_per_iteration=8, minibatch_size=8)
    prompts = agent.collect().prompts
    assert prompts[:4] == [prompts[0]] * 4
    assert len(set(prompts)) > 1


@pytest.mark.parametrize("name", sorted(AGENTS), ids=sorted(AGENTS))
def test_save_load_round_trip_gives_identical_predictions(keyword_env, tmp_path, name):
    agent = make_agent(name, keyword_env(), episodes_per_iteration=8, minibatch_size=8, learning_rate=1e-2)
    agent.learn(8 * 4 * 2)
    agent.save(tmp_path / "ckpt")
    restored = type(agent).load(tmp_path / "ckpt", keyword_env())
    obs, _ = keyword_env().reset(seed=3)
    np.testing.assert_array_equal(
        agent.predict(obs, deterministic=True)[0], restored.predict(obs, deterministic=True)[0]
    )
    for a, b in zip(agent.policy.state_dict().values(), restored.policy.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert restored.iteration == agent.iteration and restored.num_timesteps == agent.num_timesteps


@pytest.mark.parametrize("name", ["ppo", "reinforce"], ids=["ppo", "reinforce"])
def test_interrupted_run_resumes_to_the_same_weights(keyword_env, tmp_path, name):
    options = {"episodes_per_iteration": 8, "minibatch_size": 4, "learning_rate": 1e-2, "seed": 5, "kl_coef": 0.1}
    full = make_agent(name, keyword_env(), **options).learn(8 * 4 * 4)
    first = make_agent(name, keyword_env(), **options)
    first.learn(8 * 4 * 2, checkpoint_dir=tmp_path / "run")
    resumed = type(first).load(tmp_path / "run", keyword_env())
    resumed.learn(8 * 4 * 4, checkpoint_dir=tmp_path / "run")
    assert resumed.iteration == full.iteration >= 4 and resumed.num_timesteps == full.num_timesteps
    for a, b in zip(full.policy.state_dict().values(), resumed.policy.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(keyword_env, tmp_path):
    agent = PPO(keyword_env(), episodes_per_iteration=8, minibatch_size=8)
    agent.learn(8 * 4, checkpoint_dir=tmp_path / "run")
    good = (tmp_path / "run" / "agent.pt").read_bytes()
    with torch.no_grad():
        agent.policy.value_head.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"Training stopped at iteration \d+: the loss became nan"):
        agent.learn(8 * 4 * 3, checkpoint_dir=tmp_path / "run")
    assert (tmp_path / "run" / "agent.pt").read_bytes() == good


def test_bad_input(keyword_env, tmp_path):
    with pytest.raises(
        ValueError, match=r"Expected agent to be one of \['dqn', 'grpo', 'ppo', 'reinforce'\], got 'a2c'"
    ):
        make_agent("a2c", keyword_env())
    with pytest.raises(ValueError, match=r"Expected an env with observation_mode='tokens' and action_mode='vocab'"):
        PPO(keyword_env(action_mode="top_k", top_k=4))
    with pytest.raises(ValueError, match=r"Expected minibatch_size <= episodes_per_iteration \(8\), got 16"):
        PPO(keyword_env(), episodes_per_iteration=8, minibatch_size=16)
    with pytest.raises(ValueError, match=r"Expected learning_rate to be a finite number > 0, got 0"):
        REINFORCE(keyword_env(), learning_rate=0)
    with pytest.raises(ValueError, match=r"Expected the env's num_envs to be a multiple of group_size=3"):
        GRPO(keyword_env(num_envs=8), group_size=3)
    with pytest.raises(FileNotFoundError, match=r"Expected a checkpoint folder containing agent.pt, got '.*nowhere'"):
        PPO.load(tmp_path / "nowhere", keyword_env())
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "agent.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(
        ValueError, match=r"Expected a readable checkpoint in .*broken.*agent.pt' is corrupt or truncated"
    ):
        PPO.load(tmp_path / "broken", keyword_env())
    with pytest.raises(ValueError, match=r"Expected total_timesteps to be an int >= 1, got 0"):
        PPO(keyword_env()).learn(0)


def test_kl_is_zero_before_training_and_positive_after(keyword_env):
    agent = PPO(keyword_env(), episodes_per_iteration=8, minibatch_size=8, learning_rate=5e-2, kl_coef=0.1)
    rollout = agent.collect()
    assert reference_kl(agent, rollout).abs().max() < 1e-6  # policy == reference
    vary_last_rewards(rollout)
    agent.update(rollout)
    assert reference_kl(agent, rollout).sum() > 1e-4


def test_lora_trains_only_adapters_and_uses_the_base_as_reference(keyword_env):
    agent = PPO(keyword_env(), episodes_per_iteration=8, minibatch_size=8, learning_rate=5e-2, lora_rank=4)
    names = [n for n, p in agent.policy.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n or n.startswith("value_head") for n in names)
    assert agent.policy._reference == []  # no copy: the reference is the base with adapters disabled
    frozen = {n: p.detach().clone() for n, p in agent.policy.named_parameters() if not p.requires_grad}
    rollout = agent.collect()
    vary_last_rewards(rollout)
    agent.update(rollout)
    batch = rollout.to(agent.policy.device)
    policy_logits = agent.policy.score(batch).logits.detach()
    assert not torch.allclose(policy_logits, agent.policy.reference_logits(batch))
    for name, value in agent.policy.named_parameters():
        if name in frozen:
            assert torch.equal(frozen[name], value), name


def test_model_with_another_vocabulary_is_rejected(keyword_env):
    from textgen_env.testing import tiny_model

    with pytest.raises(ValueError, match=r"Expected an env whose action space matches the policy's vocabulary"):
        PPO(keyword_env(), model=tiny_model(vocab_size=100))


@pytest.mark.parametrize("temperature", [0.7, 1.0, 1.5], ids=["t0.7", "t1.0", "t1.5"])
def test_update_scores_at_the_temperature_that_sampled(keyword_env, temperature):
    agent = PPO(keyword_env(), episodes_per_iteration=8, minibatch_size=8, temperature=temperature, kl_coef=0.1)
    rollout = agent.collect()
    logprobs, _, _ = scored_by_update(agent, rollout)
    torch.testing.assert_close(logprobs, rollout.logprobs, atol=1e-5, rtol=0)  # on-policy: ratio 1


def test_collect_scores_each_slot_once_and_starts_no_throw_away_episode(keyword_env):
    calls = []

    def reward(prompt: str, completion: str, done: bool) -> float:
        calls.append(done)
        return float(done)

    env = keyword_env(reward=reward, reward_kwargs=None, max_new_tokens=5, reward_mode="dense")
    agent = REINFORCE(env, episodes_per_iteration=8, minibatch_size=8, kl_coef=0.0)
    rollout = agent.collect()
    assert calls.count(True) == len(rollout) == 8  # one final score per episode, nothing thrown away
    assert len(calls) == rollout.num_tokens


def test_dqn_rejects_a_kl_penalty_it_would_ignore(keyword_env):
    with pytest.raises(ValueError, match=r"Expected kl_coef=0 and kl_target=None for DQN .*got kl_coef=0.1"):
        make_agent("dqn", keyword_env(), kl_coef=0.1)


def test_value_head_gets_its_own_learning_rate(keyword_env):
    agent = PPO(keyword_env(), learning_rate=1e-5, value_learning_rate=1e-3, episodes_per_iteration=8)
    groups = agent.optimizer.param_groups
    assert [g["lr"] for g in groups] == [1e-5, 1e-3]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in agent.policy.value_head.parameters()}
    assert sum(len(g["params"]) for g in groups) == len(agent.policy.trainable_parameters())
    assert [g["lr"] for g in REINFORCE(keyword_env(), learning_rate=1e-5).optimizer.param_groups] == [1e-5]
    with pytest.raises(ValueError, match=r"Expected value_learning_rate to be a finite number > 0, got -1"):
        PPO(keyword_env(), value_learning_rate=-1)


def test_bf16_autocast_rollout_and_update_agree_and_weights_stay_float32(keyword_env):
    """Under bfloat16 autocast the cached rollout and the one-pass update still score the same policy (to bfloat16
    precision), the weights and gradients stay float32, and at policy = reference the KL is exactly 0."""
    agent = GRPO(keyword_env(), episodes_per_iteration=8, minibatch_size=8, kl_coef=0.1, bf16_autocast=True)
    rollout = agent.collect()
    logprobs, _, _ = scored_by_update(agent, rollout)
    gap = (logprobs - rollout.logprobs).abs().max().item()
    assert gap < 0.05  # the same policy, to bfloat16 precision
    assert reference_kl(agent, rollout).abs().max().item() == 0.0
    agent.policy.bf16_autocast = False
    in_float32, _, _ = scored_by_update(agent, rollout)
    agent.policy.bf16_autocast = True
    assert 0 < (in_float32 - logprobs).abs().max().item() < 0.05  # autocast was on
    stats = agent.update(rollout)
    assert math.isfinite(stats["losses/policy"])
    assert all(p.dtype == torch.float32 for p in agent.policy.trainable_parameters())
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in agent.policy.trainable_parameters())


@pytest.mark.slow
def test_grpo_learns_under_bf16_autocast(keyword_env):
    cls, options = LEARNING["grpo"]
    agent = cls(keyword_env(), episodes_per_iteration=16, minibatch_size=8, kl_coef=0.0, bf16_autocast=True, **options)
    history = []
    agent.learn(16 * 4 * ITERATIONS["grpo"], callback=lambda a, stats: history.append(stats))
    rewards = [s["rollout/reward_mean"] for s in history]
    assert np.mean(rewards[-3:]) > np.mean(rewards[:3]) + 0.5, rewards


def test_bf16_autocast_must_be_a_bool(keyword_env):
    with pytest.raises(ValueError, match=r"Expected bf16_autocast to be a bool, got 'yes'"):
        GRPO(keyword_env(), bf16_autocast="yes")
