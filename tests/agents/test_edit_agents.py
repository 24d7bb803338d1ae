"""The LM policy of TextEdit-v0 (`agents.edit`): candidates scored by log-probability, trained as an `Agent` by
REINFORCE or PPO through the shared clipped loss; checkpoints resume exactly; finished slots idle."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from agents.edit import EditPPO, EditPPOConfig, EditReinforce, EditReinforceConfig, candidate_logits
from agents.functional import selective_log_softmax
from agents.policy import LMPolicy

AVOID = {"reward": "keyword", "reward_kwargs": {"avoid": ["very", "slow", "sad"]}, "max_edits": 2}
ONE_DRAFT = {
    **AVOID,
    "drafts": ["i watched the film . it was not bad , but the plot was very slow ."],
    "operations": ["delete"],
}


def stop_after(iterations: int):
    return lambda agent, stats: agent.iteration < iterations


def test_candidate_logits_equal_the_naive_mean_logprob(tiny, make_edit_vec_env):
    model, tokenizer = tiny
    policy = LMPolicy(copy.deepcopy(model), tokenizer, value_head=False)
    env = make_edit_vec_env(2, operations=["delete", "swap"])
    obs, info = env.reset(seed=0)
    config = EditReinforceConfig(instruction="improve : ", separator=" . ", temperature=2.0)
    logits = candidate_logits(policy, obs, config)
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


@pytest.mark.parametrize(
    ("cls", "options"),
    [(EditReinforce, {"learning_rate": 3e-2}), (EditPPO, {"learning_rate": 1e-2, "epochs": 3, "minibatch_size": 2})],
    ids=["reinforce", "ppo"],
)
def test_training_changes_the_lm_and_raises_the_return(cls, options, make_edit_vec_env):
    env = make_edit_vec_env(4, **ONE_DRAFT)  # one draft: 12 iterations of 4 episodes learn which words to delete
    agent = cls(env, episodes_per_iteration=4, minibatch_size=options.pop("minibatch_size", 4), **options)
    before = [p.detach().clone() for p in agent.policy.trainable_parameters()]
    agent.learn(10_000, callback=stop_after(12))
    returns = [stats["rollout/reward_mean"] for stats in agent.history]
    assert len(returns) == 12
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.policy.trainable_parameters()))
    assert np.mean(returns[-4:]) > np.mean(returns[:4])
    actions, _ = agent.predict(env.reset(seed=0)[0], deterministic=True)
    assert env.action_masks()[np.arange(4), actions].all()


def test_the_first_step_is_the_plain_policy_gradient(make_edit_vec_env):
    """At the rollout's own policy the ratio is 1 (inside the clip), so the clipped loss's gradient is REINFORCE's:
    -mean(advantage * grad log pi(action)) with returns-to-go whitened over the iteration."""
    env = make_edit_vec_env(2, max_edits=2)
    for cls in (EditReinforce, EditPPO):
        agent = cls(env, episodes_per_iteration=2, minibatch_size=2, epochs=1, seed=0, max_grad_norm=1e9)
        rollout = agent.collect()
        agent.optimizer = torch.optim.SGD(agent.policy.trainable_parameters(), lr=0.0)  # keep the gradient only
        agent.update(rollout)
        got = [p.grad.clone() for p in agent.policy.trainable_parameters()]
        agent.optimizer.zero_grad()
        advantages = torch.as_tensor(rollout.returns, dtype=torch.float32)
        advantages = (advantages - advantages.mean()) / advantages.std()
        logits = candidate_logits(agent.policy, rollout.observations, agent.config, grad=True)
        chosen = torch.log_softmax(logits, dim=1)[torch.arange(len(rollout.actions)), rollout.actions]
        (-(advantages * chosen).mean()).backward()
        for a, p in zip(got, agent.policy.trainable_parameters()):
            torch.testing.assert_close(a, p.grad, atol=1e-6, rtol=1e-4)


def test_rollout_logprobs_are_the_policys_and_returns_are_discounted_to_go(make_edit_vec_env):
    env = make_edit_vec_env(3, max_edits=3)
    agent = EditReinforce(env, episodes_per_iteration=3, minibatch_size=3, gamma=0.5)
    rollout = agent.collect()
    with torch.no_grad():
        logits = candidate_logits(agent.policy, rollout.observations, agent.config)
    expected = torch.log_softmax(logits, dim=1)[torch.arange(len(rollout.actions)), rollout.actions]
    torch.testing.assert_close(rollout.logprobs, expected, atol=1e-5, rtol=0)
    for episode in range(len(rollout)):
        rows = np.flatnonzero(rollout.episode == episode)
        rewards = rollout.rewards[rows]
        naive = [sum(0.5**k * r for k, r in enumerate(rewards[t:])) for t in range(len(rows))]
        np.testing.assert_allclose(rollout.returns[rows], naive, atol=1e-12)
        assert rollout.scores[episode] == pytest.approx(rewards.sum())


def test_finished_slots_idle_so_no_episode_is_thrown_away(make_edit_vec_env):
    env = make_edit_vec_env(4, max_edits=3)
    started: list[int] = []
    restart = env.batch.restart

    def counting_restart(slots, *args, **kwargs):
        started.extend(slots)
        return restart(slots, *args, **kwargs)

    env.batch.restart = counting_restart
    agent = EditReinforce(env, episodes_per_iteration=8, minibatch_size=8)
    rollout = agent.collect()
    assert len(rollout) == 8
    assert sorted(started) == sorted([0, 1, 2, 3] * 2)  # two rounds of resets, no autoreset episode


@pytest.mark.parametrize("cls", [EditReinforce, EditPPO], ids=["reinforce", "ppo"])
def test_a_checkpoint_resumes_exactly(cls, make_edit_vec_env, tmp_path):
    options = {"episodes_per_iteration": 2, "minibatch_size": 1 if cls is EditPPO else 2, "learning_rate": 1e-2}
    straight = cls(make_edit_vec_env(2, **AVOID), **options)
    straight.learn(10_000, callback=stop_after(4))
    first = cls(make_edit_vec_env(2, **AVOID), **options)
    first.learn(10_000, callback=stop_after(2), checkpoint_dir=tmp_path / "run")
    resumed = cls.load(tmp_path / "run", make_edit_vec_env(2, **AVOID))
    assert resumed.iteration == 2 and resumed.num_timesteps == first.num_timesteps
    resumed.learn(10_000, callback=stop_after(4))
    assert resumed.history == straight.history
    for a, b in zip(straight.policy.trainable_parameters(), resumed.policy.trainable_parameters()):
        assert torch.equal(a, b)


def test_config_and_construction_errors(tiny, make_edit_vec_env):
    with pytest.raises(ValueError, match=r"Expected temperature to be a finite number > 0, got 0"):
        EditReinforceConfig(temperature=0)
    with pytest.raises(ValueError, match=r"Expected kl_coef=0 and kl_target=None for an edit agent"):
        EditPPOConfig(kl_coef=0.1)
    with pytest.raises(ValueError, match=r"Expected epochs=1 for EditReinforce"):
        EditReinforceConfig(epochs=2)
    model, tokenizer = tiny
    with pytest.raises(TypeError, match=r"Expected the env first, got an LMPolicy"):
        EditReinforce(LMPolicy(copy.deepcopy(model), tokenizer, value_head=False))
    with pytest.raises(ValueError, match=r"Expected an env with action_mode='candidates'"):
        EditPPO(make_edit_vec_env(1, action_mode="structured"))
    with pytest.raises(TypeError, match=r"Expected a TextEditVectorEnv for an edit agent, got str"):
        EditPPO("TextEdit-v0")
