"""REINFORCE: the plain policy gradient, theta <- theta + alpha * sum_t grad log pi(a_t|s_t) * (G_t - b).

The baseline b is a running mean of episode returns, a learned value head on the trunk, or nothing. The per-token
KL penalty to the reference (exact, from one no-grad pass) is folded into the rewards before the returns.
"""

from __future__ import annotations

import numpy as np
import torch

from agents.base import Agent, Rollout
from agents.config import REINFORCEConfig
from agents.functional import discounted_returns, masked_mean, masked_sum, selective_log_softmax
from agents.ppo import score_rollout

__all__ = ["REINFORCE"]


class REINFORCE(Agent):
    """REINFORCE with a baseline; config: `REINFORCEConfig`."""

    config_class = REINFORCEConfig
    name = "reinforce"

    def __init__(self, env, config=None, **kwargs) -> None:
        super().__init__(env, config, **kwargs)
        self.baseline = 0.0
        self._baseline_ready = False

    @property
    def uses_value_head(self) -> bool:  # type: ignore[override]
        return self.config.baseline == "value"

    def update(self, rollout: Rollout) -> dict[str, float]:
        config: REINFORCEConfig = self.config  # type: ignore[assignment]
        n = len(rollout.episodes)
        need_kl = self.kl_controller.value > 0
        old = score_rollout(self, rollout, need_kl=need_kl) if need_kl else None
        width = max(len(e.completion_ids) for e in rollout.episodes)
        env_rewards = rollout.padded("rewards", range(n), width)
        mask = env_rewards.new_zeros(env_rewards.shape, dtype=bool)
        for i, episode in enumerate(rollout.episodes):
            mask[i, : len(episode.completion_ids)] = True
        kl = old["kl"] if old is not None else env_rewards.new_zeros(env_rewards.shape)
        returns = discounted_returns(env_rewards - self.kl_controller.value * kl, mask, config.gamma)
        pad, device = self.policy.tokenizer.pad_token_id, self.policy.device
        totals: dict[str, list[float]] = {}
        baseline = self.baseline if self._baseline_ready else float(returns[:, 0].mean())
        for _ in range(config.epochs):
            for rows in self.minibatches(n):
                batch = rollout.batch(rows, pad, device)
                t = batch.completion_mask.shape[1]
                m = mask[rows, :t].to(device)
                g = returns[rows, :t].to(device)
                scored = self.policy.score(batch)
                logp = selective_log_softmax(scored.logits, batch.actions)
                loss_terms = {}
                if config.baseline == "value":
                    advantages = g - scored.values.detach()
                    loss_terms["losses/value"] = 0.5 * masked_mean((scored.values - g) ** 2, m)
                elif config.baseline == "running_mean":
                    advantages = g - baseline
                else:
                    advantages = g
                loss_terms["losses/policy"] = -masked_mean(logp * advantages, m)
                loss = loss_terms["losses/policy"] + config.vf_coef * loss_terms.get("losses/value", 0.0)
                grad_norm = self.optimizer_step(loss)
                for key, value in loss_terms.items():
                    totals.setdefault(key, []).append(float(value.item() if torch.is_tensor(value) else value))
                totals.setdefault("losses/grad_norm", []).append(grad_norm)
        episode_returns = float(returns[:, 0].mean())
        if self._baseline_ready:
            self.baseline = config.baseline_momentum * self.baseline + (1 - config.baseline_momentum) * episode_returns
        else:
            self.baseline, self._baseline_ready = episode_returns, True
        kl_per_episode = float(masked_sum(kl, mask).item() / n)
        self.kl_controller.update(kl_per_episode, n)
        stats = {key: float(np.mean(values)) for key, values in totals.items()}
        stats["train/baseline"] = self.baseline
        if need_kl:  # not measured otherwise: leave it out rather than report a misleading 0
            stats["rollout/kl"] = kl_per_episode
        return stats

    def extra_state(self) -> dict:
        return {"baseline": self.baseline, "baseline_ready": self._baseline_ready}

    def load_extra_state(self, state: dict) -> None:
        self.baseline = state.get("baseline", 0.0)
        self._baseline_ready = state.get("baseline_ready", False)
