"""REINFORCE: the plain policy gradient, theta <- theta + alpha * sum_t grad log pi(a_t|s_t) * (G_t - b).

The baseline b is a running mean of episode returns, a learned value head on the trunk, or nothing. The KL penalty
to the reference goes into the per-token rewards before the returns as the sampled k1 term
``-kl_coef * (log pi(a_t|s_t) - log ref(a_t|s_t))`` (see `agents.ppo` for why not the exact per-token KL); the exact
KL, from the same no-grad pass, is what is logged and what the adaptive controller uses.

On-policy only for its first step: with ``epochs > 1``, or minibatches smaller than the iteration, every later step
follows the gradient of log pi at samples drawn from the policy before the earlier steps, without an importance ratio
(unlike `agents.ppo`, whose clipped ratio corrects for it). That is a biased estimate whose bias grows with the
learning rate and the number of steps per rollout. The defaults (one epoch, minibatches of 8 of 16 episodes) take
two steps per rollout, the second slightly off-policy; ``minibatch_size=episodes_per_iteration`` with ``epochs=1``
is the unbiased plain policy gradient. Use PPO when you want several steps per rollout.
"""

from __future__ import annotations

import numpy as np
import torch

from agents.base import Agent
from agents.config import REINFORCEConfig
from agents.functional import (
    discounted_returns,
    masked_mean,
    masked_sum,
    selective_log_softmax,
)
from agents.rollout import RolloutBatch

__all__ = ["REINFORCE"]


class REINFORCE(Agent):
    """REINFORCE with a baseline; config: `REINFORCEConfig`."""

    config_class = REINFORCEConfig
    config: REINFORCEConfig  # what config_class builds
    name = "reinforce"

    def __init__(self, env, config=None, **kwargs) -> None:
        super().__init__(env, config, **kwargs)
        self.baseline = 0.0
        self._baseline_ready = False

    @property
    def uses_value_head(self) -> bool:  # type: ignore[override]  # a property over the base's class flag
        return self.config.baseline == "value"

    def update(self, rollout: RolloutBatch) -> dict[str, float]:
        config = self.config
        n = len(rollout)
        need_kl = self.needs_kl()
        mask = rollout.completion_mask
        epochs = self.epoch_minibatches(n)
        first = epochs[0][0] if epochs[0] else None  # the update's first minibatch (none without episodes)
        # the KL pass rescores the rollout (see LMPolicy) and keeps the first minibatch's forward for the first step
        rewards, kept = self.rewards_with_kl_penalty(rollout, keep_rows=first)
        returns = rollout.returns = discounted_returns(rewards, mask, config.gamma)
        device = self.policy.device
        totals: dict[str, list[float]] = {}
        episode_returns = (  # over every rank's episodes
            self.dist.mean(float(returns[:, 0].sum()), n) if self.dist.enabled else float(returns[:, 0].mean())
        )
        baseline = self.baseline if self._baseline_ready else episode_returns
        for minibatches in epochs:
            for rows in minibatches:
                if not len(rows):  # another rank has more replies this epoch: join its step without data
                    self.optimizer_step(None)
                    continue
                batch = rollout.select(rows).to(device)
                m, g = batch.completion_mask, batch.returns
                if kept is not None:  # the same forward at the same weights: not run twice
                    scored, kept = kept.policy, None
                else:
                    scored = self.policy.score(batch, temperature=config.temperature)
                logp = selective_log_softmax(scored.logits, batch.actions)
                loss_terms = {}
                assert g is not None  # returns are set before the epochs
                if config.baseline == "value":
                    assert scored.values is not None  # the value baseline gives the policy a value head
                    advantages = g - scored.values.detach()
                    loss_terms["losses/value"] = 0.5 * masked_mean((scored.values - g) ** 2, m)
                elif config.baseline == "running_mean":
                    advantages = g - baseline
                else:
                    advantages = g
                loss_terms["losses/policy"] = -masked_mean(logp * advantages, m)
                loss = loss_terms["losses/policy"] + config.vf_coef * loss_terms.get("losses/value", 0.0)
                grad_norm = self.optimizer_step(loss, weight=m.sum())
                for key, value in loss_terms.items():
                    totals.setdefault(key, []).append(float(value.item() if torch.is_tensor(value) else value))
                totals.setdefault("losses/grad_norm", []).append(grad_norm)
        if self._baseline_ready:
            self.baseline = config.baseline_momentum * self.baseline + (1 - config.baseline_momentum) * episode_returns
        else:
            self.baseline, self._baseline_ready = episode_returns, True
        stats = {key: float(np.mean(values)) for key, values in totals.items()}
        stats["train/baseline"] = self.baseline
        if need_kl:  # not measured otherwise: leave it out rather than report a misleading 0
            assert rollout.kl is not None  # the KL pass of rewards_with_kl_penalty filled it
            kl_per_episode = self.dist.mean(float(masked_sum(rollout.kl, mask)), n)
            self.kl_controller.update(kl_per_episode, int(self.dist.sum([n])[0]))
            stats["rollout/kl"] = kl_per_episode
        return stats

    def extra_state(self) -> dict:
        return {"baseline": self.baseline, "baseline_ready": self._baseline_ready}

    def load_extra_state(self, state: dict) -> None:
        self.baseline = state.get("baseline", 0.0)
        self._baseline_ready = state.get("baseline_ready", False)
