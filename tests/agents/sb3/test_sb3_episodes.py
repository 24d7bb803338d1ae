"""Whole-episode SB3 updates (`agents.sb3.episodes`): the chain finder against a naive loop, the buffer's minibatches,
one forward per episode giving the per-step path's log-probs, values, entropies and gradients, and learning with
stock PPO/A2C; `LMActorCriticPolicy` built from a model alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, PPO

from agents.sb3 import EpisodeRolloutBuffer, LMActorCriticPolicy, LMSource, save_lm
from agents.sb3.episodes import episode_segments, token_chains
from textgen_env import load_model
from textgen_env.testing import tiny_model


def _naive_chains(ids: np.ndarray, mask: np.ndarray, actions: np.ndarray) -> list[int]:
    """Chain index of each row: row k continues row k-1 when its unpadded tokens are row k-1's plus its action."""
    chains, current = [], -1
    for k in range(len(ids)):
        text = ids[k][mask[k] == 1].tolist()
        continues = k > 0 and text == [*ids[k - 1][mask[k - 1] == 1].tolist(), int(actions[k - 1])]
        current += 0 if continues else 1
        chains.append(current)
    return chains


def test_token_chains_match_a_naive_loop():
    rng = np.random.default_rng(0)
    length, pad = 10, 0
    rows, acts = [], []
    for _ in range(12):  # episodes of random prompts, some cut short, some rows repeated or from another episode
        text = rng.integers(1, 6, size=rng.integers(1, 4)).tolist()
        for _ in range(rng.integers(1, 5)):
            action = int(rng.integers(1, 6))
            rows.append(text[-length:])
            acts.append(action if rng.random() > 0.15 else action % 5 + 1)  # a wrong action breaks the chain
            text = [*text, action]
    ids = np.full((len(rows), length), pad)
    mask = np.zeros_like(ids)
    for k, row in enumerate(rows):
        ids[k, length - len(row) :], mask[k, length - len(row) :] = row, 1
    actions = np.array(acts)
    chains = token_chains(torch.as_tensor(ids), torch.as_tensor(mask), torch.as_tensor(actions))
    expected = _naive_chains(ids, mask, actions)
    assert chains.chain.tolist() == expected
    assert 1 < len(chains.ends) < len(rows)
    for k, chain in enumerate(expected):
        end = max(i for i, c in enumerate(expected) if c == chain)
        assert chains.ends[chain] == end and chains.offset[k] == end - k


def test_episode_segments_split_each_env_at_episode_starts():
    starts = np.array([[1, 0], [0, 0], [1, 0], [0, 1]])  # (n_steps=4, n_envs=2)
    segments = [s.tolist() for s in episode_segments(starts)]
    assert segments == [[0, 1], [2, 3], [4, 5, 6], [7]]  # env-major flat indices: env e step t -> e * 4 + t


def _ppo(env, model, **kwargs) -> PPO:
    settings = dict(n_steps=12, batch_size=16, n_epochs=1, learning_rate=1e-2, seed=0, normalize_advantage=False)
    settings.update(rollout_buffer_kwargs={"normalize_advantage": True}, **kwargs)
    return PPO(
        LMActorCriticPolicy,
        env,
        policy_kwargs={"model": LMSource(model)},
        rollout_buffer_class=EpisodeRolloutBuffer,
        **settings,
    )


def _collect(algorithm) -> None:
    _, callback = algorithm._setup_learn(algorithm.n_steps * algorithm.n_envs)
    algorithm.collect_rollouts(algorithm.env, callback, algorithm.rollout_buffer, algorithm.n_steps)


def test_minibatches_hold_whole_episodes_in_order_and_cover_the_rollout_once(sb3_env, tiny):
    ppo = _ppo(sb3_env(4, max_new_tokens=5), tiny[0])
    _collect(ppo)
    buffer = ppo.rollout_buffer
    seen = []
    for batch in buffer.get(16):
        assert len(batch.actions) <= 16
        ids, mask = batch.observations["input_ids"], batch.observations["attention_mask"]
        chains = token_chains(ids, mask, batch.actions.flatten())
        lengths = mask.sum(dim=1)
        assert len(chains.ends) < len(ids)  # steps of one episode stay together
        for end in chains.ends.tolist():  # and in order: each chain's rows grow by one token a step
            rows = (chains.chain == chains.chain[end]).nonzero().flatten()
            assert torch.equal(lengths[rows], lengths[end] - (end - rows))
        seen.append(batch.old_log_prob)
    assert sum(len(s) for s in seen) == 4 * 12
    flat = torch.cat(seen).sort().values
    torch.testing.assert_close(flat, torch.as_tensor(buffer.log_probs).flatten().sort().values)  # each step once


def test_one_forward_per_episode_equals_the_per_step_path(sb3_env, tiny):
    ppo = _ppo(sb3_env(4, max_new_tokens=6), tiny[0], n_steps=12)
    policy = ppo.policy
    torch.nn.init.normal_(policy.value_net.weight)  # values that depend on the hidden state
    _collect(ppo)
    for batch in ppo.rollout_buffer.get(24):
        obs, actions = batch.observations, batch.actions.long().flatten()
        ids, mask = policy._tokens(obs)
        assert len(token_chains(ids, mask, actions).ends) <= len(actions) / 2  # the fast path is taken
        policy.zero_grad()
        values, log_prob, entropy = policy.evaluate_actions(obs, actions)
        (log_prob.sum() + values.sum() + entropy.sum()).backward()
        fast_grads = [p.grad.clone() for p in policy.parameters()]
        policy.zero_grad()
        logits, step_values = zip(*(policy._full_forward(ids[k : k + 1], mask[k : k + 1]) for k in range(len(ids))))
        distribution = torch.distributions.Categorical(logits=torch.cat(logits))
        step_log_prob, step_entropy = distribution.log_prob(actions), distribution.entropy()
        (step_log_prob.sum() + torch.cat(step_values).sum() + step_entropy.sum()).backward()
        torch.testing.assert_close(log_prob, step_log_prob, atol=1e-5, rtol=0)
        torch.testing.assert_close(values, torch.cat(step_values), atol=1e-5, rtol=0)
        torch.testing.assert_close(entropy, step_entropy, atol=1e-5, rtol=0)
        torch.testing.assert_close(log_prob, batch.old_log_prob, atol=1e-5, rtol=0)  # = the KV-cached rollout's
        for fast, parameter in zip(fast_grads, policy.parameters()):
            torch.testing.assert_close(fast, parameter.grad, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_stock_ppo_learns_with_the_episode_buffer(sb3_env, tiny):
    ppo = _ppo(sb3_env(), tiny[0], n_steps=16, batch_size=32, n_epochs=4)
    returns: list[float] = []

    def record(locals_, _globals) -> bool:
        returns.extend(info["episode"]["r"] for info in locals_["infos"] if "episode" in info)
        return True

    ppo.learn(8 * 16 * 16, callback=record)
    assert np.mean(returns[:64]) + 0.4 < np.mean(returns[-64:]), (np.mean(returns[:64]), np.mean(returns[-64:]))


def test_a2c_takes_the_same_steps_with_either_buffer(sb3_env, tiny):
    """A2C uses the whole rollout as one batch, so the order of its steps is all the buffer changes."""
    weights = []
    for buffer_class in (None, EpisodeRolloutBuffer):
        a2c = A2C(
            LMActorCriticPolicy,
            sb3_env(4, kl_coef=0.1),
            n_steps=6,
            seed=0,
            policy_kwargs={"model": tiny[0]},
            rollout_buffer_class=buffer_class,
        )
        a2c.learn(4 * 6 * 3)
        weights.append([p.detach().clone() for p in a2c.policy.parameters()])
    assert not torch.equal(weights[0][0], tiny[0].transformer.wte.weight)
    for stock, episodes in zip(*weights):
        torch.testing.assert_close(episodes, stock, atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------------------------------- model only
def test_the_policy_needs_only_the_model(sb3_env, tiny, tmp_path):
    model, tokenizer = tiny
    env = sb3_env(2)
    bare = PPO(LMActorCriticPolicy, env, n_steps=4, batch_size=8, policy_kwargs={"model": model})
    assert bare.policy.tokenizer is None and bare.policy.vocab_size == len(tokenizer)
    bare.learn(8)
    with pytest.raises(ValueError, match="Expected tokenizer="):
        save_lm(bare, tmp_path / "bare")
    folder = save_lm(bare, tmp_path / "lm", tokenizer=tokenizer)
    by_path = PPO(LMActorCriticPolicy, env, n_steps=4, batch_size=8, policy_kwargs={"model": str(folder)})
    assert len(by_path.policy.tokenizer) == len(tokenizer)
    loaded, _ = load_model(folder)  # an instance from a local folder: its saved tokenizer is found
    assert PPO(LMActorCriticPolicy, env, policy_kwargs={"model": loaded}).policy.tokenizer is not None


def test_a_model_alone_must_fit_the_env_vocabulary(sb3_env, tiny):
    _, tokenizer = tiny
    small = tiny_model(len(tokenizer) // 2)  # fewer embedding rows than the env has token actions
    with pytest.raises(ValueError, match=r"embedding rows cover the env's \d+ token actions"):
        PPO(LMActorCriticPolicy, sb3_env(1), policy_kwargs={"model": small})
    with pytest.raises(TypeError, match=r"Expected policy_kwargs\['tokenizer'\]"):
        PPO(LMActorCriticPolicy, sb3_env(1), policy_kwargs={"model": small, "tokenizer": "gpt2"})


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_one_episode_per_minibatch_learns_like_the_stock_buffer(sb3_env, tiny, seed):
    """SB3 PPO, 4-token episodes, batch_size = one episode: per-minibatch normalisation would zero every advantage;
    normalised once over the rollout the buffer learns as the stock one does (reward 1 when 'great' appears)."""
    means = {}
    for label, options in {
        "stock": {},
        "episodes": {
            "rollout_buffer_class": EpisodeRolloutBuffer,
            "normalize_advantage": False,
            "rollout_buffer_kwargs": {"normalize_advantage": True},
        },
    }.items():
        ppo = PPO(
            LMActorCriticPolicy,
            sb3_env(seed=seed),
            n_steps=16,
            batch_size=4,
            n_epochs=2,
            learning_rate=3e-3,
            seed=seed,
            policy_kwargs={"model": LMSource(tiny[0])},
            **options,
        )
        returns: list[float] = []

        def record(locals_, _globals, returns=returns) -> bool:
            returns.extend(info["episode"]["r"] for info in locals_["infos"] if "episode" in info)
            return True

        ppo.learn(8 * 16 * 20, callback=record)
        means[label] = (float(np.mean(returns[:32])), float(np.mean(returns[-128:])))
    # measured over the last 128 of 640 episodes (seeds 0, 1): stock 0.08 -> 0.89 and 0.04 -> 0.88, episodes
    # 0.09 -> 0.97 and 0.03 -> 0.99. At lr 1e-2 and 640 steps this task is a coin toss for both buffers (3 seeds:
    # stock learned in 2, episodes in 1), which is why the earlier single-seed version of this test failed in CI.
    for label in means:
        assert means[label][1] > means[label][0] + 0.5, means
    assert means["episodes"][1] >= means["stock"][1] - 0.15, means


def test_per_minibatch_normalisation_over_whole_episodes_is_refused(sb3_env, tiny):
    ppo = _ppo(sb3_env(4), tiny[0], batch_size=4, normalize_advantage=True)
    with pytest.raises(ValueError, match="Expected normalize_advantage=False for PPO with EpisodeRolloutBuffer"):
        ppo.learn(4 * 12)
