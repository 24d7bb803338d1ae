"""`LMPolicy.score_reference` with ``keep_rows``: the KL pass's forward of the update's first minibatch serves the
first step (issue 22, part 10: nothing the update already computed at the same weights is computed again).

* the kept forward is the forward the step would run: the same logits, values and gradients, bit for bit;
* the rollout's rescored numbers do not change;
* an update runs one policy forward fewer (and, with GRPO's exact KL, one reference forward fewer; with k3 none in
  the steps), and ends at the weights the update without reuse reaches.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from agents import GRPO, PPO, REINFORCE
from agents.policy import LMPolicy

AGENTS = [
    (PPO, {"epochs": 2}),
    (REINFORCE, {"epochs": 1}),
    (GRPO, {"group_size": 4}),
    (GRPO, {"group_size": 4, "kl_estimator": "k3"}),
]
IDS = ["ppo", "reinforce", "grpo", "grpo-k3"]


def make(keyword_env, tiny, cls, options):
    return cls(
        keyword_env(max_new_tokens=6),
        reference=tiny[0],
        kl_coef=0.2,
        learning_rate=1e-2,
        episodes_per_iteration=16,
        minibatch_size=4,
        seed=0,
        **options,
    )


def varied(rollout):
    """Rewards and scores that differ between episodes, so that every step has a gradient."""
    for i, n in enumerate(rollout.completion_lengths.tolist()):
        rollout.rewards[i, :n] = 0.0
        rollout.rewards[i, n - 1] = float(i % 3)
        rollout.scores[i] = float(i % 3)
    return rollout


def test_the_kept_forward_is_the_steps_forward_bit_for_bit(keyword_env, tiny):
    agent = make(keyword_env, tiny, PPO, {})
    rollout = agent.collect()
    rows = np.array([5, 1, 12, 7])
    kept = agent.policy.score_reference(rollout, temperature=1.0, chunk_size=4, keep_rows=rows)
    assert kept is not None and kept.rows.tolist() == rows.tolist()
    assert kept.policy.logits.requires_grad and not kept.reference_logits.requires_grad
    fresh = agent.policy.score(rollout.select(rows), temperature=1.0)
    assert torch.equal(kept.policy.logits, fresh.logits)
    assert kept.policy.values is not None and fresh.values is not None
    assert torch.equal(kept.policy.values, fresh.values)
    assert torch.equal(kept.reference_logits, agent.policy.reference_logits(rollout.select(rows)))
    grads = []
    for out in (kept.policy, fresh):
        agent.policy.zero_grad()
        (out.logits.logsumexp(-1).sum() + out.values.sum()).backward()
        grads.append([p.grad.clone() for p in agent.policy.trainable_parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_keeping_rows_leaves_the_rescored_numbers_unchanged(keyword_env, tiny):
    agent = make(keyword_env, tiny, PPO, {})
    rollout = agent.collect()
    plain = copy.deepcopy(rollout)
    assert agent.policy.score_reference(plain, temperature=1.0, chunk_size=4) is None
    agent.policy.score_reference(rollout, temperature=1.0, chunk_size=4, keep_rows=np.array([3, 9, 0, 14]))
    for name in ("logprobs", "values", "reference_logprobs", "kl"):
        torch.testing.assert_close(getattr(rollout, name), getattr(plain, name), atol=1e-6, rtol=0)


def count_forwards(module: torch.nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize("cls, options", AGENTS, ids=IDS)
def test_an_update_runs_one_policy_forward_fewer(keyword_env, tiny, cls, options):
    agent = make(keyword_env, tiny, cls, options)
    rollout = varied(agent.collect())
    reference = copy.deepcopy(tiny[0])
    agent.policy._reference = [reference]  # a reference of its own, so that its forwards can be counted
    policy_calls, reference_calls = count_forwards(agent.policy.model), count_forwards(reference)
    agent.update(rollout)
    chunks = -(-len(rollout) // agent.config.minibatch_size)  # the KL pass
    steps = chunks * agent.config.epochs
    assert policy_calls[0] == chunks + steps - 1
    exact_in_the_loss = cls is GRPO and options.get("kl_estimator", "exact") == "exact"
    assert reference_calls[0] == chunks + (steps - 1 if exact_in_the_loss else 0)


@pytest.mark.parametrize("cls, options", AGENTS, ids=IDS)
def test_an_update_reaches_the_weights_of_the_update_without_reuse(keyword_env, tiny, cls, options, monkeypatch):
    weights = []
    for reuse in (True, False):
        agent = make(keyword_env, tiny, cls, options)
        rollout = varied(agent.collect())
        if not reuse:
            original = LMPolicy.score_reference

            def no_reuse(self, batch, *, temperature, chunk_size, keep_rows=None, original=original):
                return original(self, batch, temperature=temperature, chunk_size=chunk_size)

            monkeypatch.setattr(LMPolicy, "score_reference", no_reuse)
        stats = agent.update(rollout)
        assert np.isfinite(list(stats.values())).all()
        weights.append([p.detach().clone() for p in agent.policy.trainable_parameters()])
    assert not torch.equal(weights[0][0], tiny[0].transformer.wte.weight)
    for with_reuse, without in zip(*weights):
        torch.testing.assert_close(with_reuse, without, atol=1e-6, rtol=0)
