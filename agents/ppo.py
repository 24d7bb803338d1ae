"""PPO for language models: GAE over tokens, clipped objective, value head on the trunk, exact per-token KL.

Each iteration: (1) roll out episodes with the KV cache; (2) one no-grad pass over the episodes gives the old
log-probs, the values and the exact KL to the reference at every token, sum_v pi(v|s_t) log(pi(v|s_t)/ref(v|s_t));
(3) rewards are the env's per-token rewards minus kl_coef * KL_t, advantages come from GAE; (4) `epochs` passes of
clipped policy and value updates over shuffled minibatches, each minibatch scored in one forward; (5) the KL
coefficient adapts toward ``kl_target`` when one is set.
"""

from __future__ import annotations

import numpy as np
import torch

from agents.base import Agent, Rollout
from agents.config import PPOConfig
from agents.functional import (
    clipped_policy_loss,
    clipped_value_loss,
    entropy_from_logits,
    exact_kl_from_logits,
    gae_advantages,
    masked_mean,
    masked_sum,
    masked_whiten,
    selective_log_softmax,
)

__all__ = ["PPO", "score_rollout"]


@torch.no_grad()
def score_rollout(agent: Agent, rollout: Rollout, *, need_kl: bool) -> dict[str, torch.Tensor]:
    """No-grad pass over a rollout: (n, T) old log-probs, values (when the policy has a value head), exact KL
    to the reference (zeros when `need_kl` is False) and the completion mask."""
    n = len(rollout.episodes)
    width = max(len(e.completion_ids) for e in rollout.episodes)
    out = {key: torch.zeros((n, width)) for key in ("logprobs", "values", "kl")}
    out["mask"] = torch.zeros((n, width), dtype=torch.bool)
    pad, device = agent.policy.tokenizer.pad_token_id, agent.policy.device
    for start in range(0, n, agent.config.minibatch_size):
        rows = np.arange(start, min(n, start + agent.config.minibatch_size))
        batch = rollout.batch(rows, pad, device)
        scored = agent.policy.score(batch)
        t = batch.completion_mask.shape[1]
        out["logprobs"][rows, :t] = selective_log_softmax(scored.logits, batch.actions).cpu()
        if scored.values is not None:
            out["values"][rows, :t] = scored.values.float().cpu()
        if need_kl:
            out["kl"][rows, :t] = exact_kl_from_logits(scored.logits, agent.policy.reference_logits(batch)).cpu()
        out["mask"][rows, :t] = batch.completion_mask.cpu()
    for key in ("logprobs", "values", "kl"):
        out[key] = out[key] * out["mask"]
    return out


class PPO(Agent):
    """Proximal Policy Optimization on the LM policy (see the module docstring); config: `PPOConfig`."""

    config_class = PPOConfig
    uses_value_head = True
    name = "ppo"

    def update(self, rollout: Rollout) -> dict[str, float]:
        config: PPOConfig = self.config  # type: ignore[assignment]
        n = len(rollout.episodes)
        need_kl = self.kl_controller.value > 0 or config.kl_target is not None
        old = score_rollout(self, rollout, need_kl=need_kl)
        mask = old["mask"]
        width = mask.shape[1]
        env_rewards = rollout.padded("rewards", range(n), width)
        rewards = env_rewards - self.kl_controller.value * old["kl"]
        advantages, returns = gae_advantages(rewards, old["values"], mask, config.gamma, config.lam)
        if config.whiten_advantages:
            advantages = masked_whiten(advantages, mask)
        pad, device = self.policy.tokenizer.pad_token_id, self.policy.device
        totals: dict[str, list[float]] = {}
        for _ in range(config.epochs):
            for rows in self.minibatches(n):
                batch = rollout.batch(rows, pad, device)
                t = batch.completion_mask.shape[1]
                m = mask[rows, :t].to(device)
                scored = self.policy.score(batch)
                logp = selective_log_softmax(scored.logits, batch.actions)
                policy_loss, policy_stats = clipped_policy_loss(
                    logp, old["logprobs"][rows, :t].to(device), advantages[rows, :t].to(device), m, config.clip_range
                )
                value_loss = clipped_value_loss(
                    scored.values,
                    old["values"][rows, :t].to(device),
                    returns[rows, :t].to(device),
                    m,
                    config.clip_range_value,
                )
                entropy = masked_mean(entropy_from_logits(scored.logits), m)
                loss = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy
                grad_norm = self.optimizer_step(loss)
                for key, value in (
                    ("losses/policy", policy_loss.item()),
                    ("losses/value", value_loss.item()),
                    ("losses/entropy", entropy.item()),
                    ("losses/approx_kl", policy_stats["approx_kl"].item()),
                    ("losses/clip_fraction", policy_stats["clip_fraction"].item()),
                    ("losses/grad_norm", grad_norm),
                ):
                    totals.setdefault(key, []).append(value)
        kl_per_episode = float(masked_sum(old["kl"], mask).item() / n)
        self.kl_controller.update(kl_per_episode, n)
        stats = {key: float(np.mean(values)) for key, values in totals.items()}
        if need_kl:  # not measured otherwise: leave it out rather than report a misleading 0
            stats["rollout/kl"] = kl_per_episode
        stats["rollout/env_reward"] = float(env_rewards.sum().item() / n)
        return stats
