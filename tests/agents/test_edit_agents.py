"""The LM policy of TextEdit-v0: candidates scored by log-probability, trained with REINFORCE."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from agents.edit import EditReinforce, EditReinforceConfig, candidate_logits
from agents.functional import selective_log_softmax
from agents.policy import LMPolicy


@pytest.fixture
def policy(tiny) -> LMPolicy:
    model, tokenizer = tiny
    return LMPolicy(copy.deepcopy(model), tokenizer, value_head=False)


def test_candidate_logits_equal_the_naive_mean_logprob(policy, make_edit_vec_env):
    env = make_edit_vec_env(2, operations=["delete", "swap"])
    obs, info = env.reset(seed=0)
    config = EditReinforceConfig(instruction="improve : ", separator=" . ", temperature=2.0)
    logits = candidate_logits(policy, obs, config)
    tokenizer = policy.tokenizer
    for n in range(2):
        text = info["text"][n]
        for i, result in enumerate([text, *info["candidate_texts"][n]]):
            prompt = tokenizer("improve : " + text + " . ", add_special_tokens=False)["input_ids"]
            target = tokenizer(result, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt + target])
            with torch.no_grad():
                out = policy.model(ids).logits[0, len(prompt) - 1 : -1].float()
            naive = selective_log_softmax(out, torch.tensor(target)).mean() / 2.0
            assert logits[n, i].item() == pytest.approx(naive.item(), abs=1e-4)
        assert torch.isinf(logits[n, 1 + len(info["candidate_texts"][n]) :]).all()


def test_reinforce_changes_the_lm_and_raises_the_return(policy, make_edit_vec_env):
    env = make_edit_vec_env(4, reward="keyword", reward_kwargs={"avoid": ["very", "slow", "sad"]}, max_edits=2)
    agent = EditReinforce(policy, EditReinforceConfig(learning_rate=3e-2, seed=0))
    before = [p.detach().clone() for p in policy.trainable_parameters()]
    returns = agent.learn(env, iterations=12)
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.trainable_parameters()))
    assert np.mean(returns[-4:]) > np.mean(returns[:4])
    actions = agent.act(env.reset(seed=0)[0], deterministic=True)
    assert env.action_masks()[np.arange(4), actions].all()


def test_config_errors():
    with pytest.raises(ValueError, match=r"Expected temperature to be a finite number > 0, got 0"):
        EditReinforceConfig(temperature=0)


def test_ppo_changes_the_lm_and_raises_the_return(policy, make_edit_vec_env):
    from agents.edit import EditPPO, EditPPOConfig

    env = make_edit_vec_env(4, reward="keyword", reward_kwargs={"avoid": ["very", "slow", "sad"]}, max_edits=2)
    agent = EditPPO(policy, EditPPOConfig(learning_rate=1e-2, epochs=3, minibatch_size=4, seed=0))
    before = [p.detach().clone() for p in policy.trainable_parameters()]
    returns = agent.learn(env, iterations=12)
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.trainable_parameters()))
    assert np.mean(returns[-4:]) > np.mean(returns[:4])


def test_ppo_first_epoch_step_equals_reinforce_within_the_clip(policy, make_edit_vec_env):
    """At the first step the ratio is 1 (inside the clip), so PPO's gradient is REINFORCE's."""
    from agents.edit import EditPPO, EditPPOConfig

    env = make_edit_vec_env(2, max_edits=1)
    obs, _ = env.reset(seed=0)
    batch = [{key: value[n] for key, value in obs.items()} for n in range(2)]
    grads = []
    for agent in (EditReinforce(copy.deepcopy(policy)), EditPPO(copy.deepcopy(policy), EditPPOConfig(epochs=1))):
        agent.optimizer = torch.optim.SGD(agent.policy.trainable_parameters(), lr=0.0)  # keep the gradient only
        agent.update(batch, [1, 0], [1.0, -1.0])
        grads.append([p.grad.clone() for p in agent.policy.trainable_parameters() if p.grad is not None])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
