"""PPO for language models: GAE over tokens, clipped objective, value head on the trunk, KL penalty in the reward.

Each iteration: (1) roll out episodes with the KV cache, recording the behaviour log-probs and the values of every
state (without a KL term these are the "old" numbers of the update: nothing is scored twice); (2) with a KL term,
one no-grad pass over the episodes (at the sampling temperature) gives the reference's log-probs of the chosen
tokens, the exact KL at every token and, from the same forward, the policy's log-probs and values
(`LMPolicy.score_reference` says why they are rescored); (3) rewards are the
env's per-token rewards minus ``kl_coef * (log pi(a_t|s_t) - log ref(a_t|s_t))`` (the sampled k1 term, as in
Ziegler et al. 2019 and TRL: it depends on the action, so its policy gradient is that of -kl_coef * KL(pi || ref)
and pulls the policy toward the reference), advantages come from GAE and are whitened with the task reward they sit
in; (4) `epochs` passes of clipped policy and value updates over shuffled minibatches, each scored in one forward (the
first one's is the KL pass's own: nothing is scored twice at the same weights);
(5) the exact KL, summed per episode, is what is logged and what the adaptive controller steers toward
``kl_target``.

Why not the exact KL in the reward: KL(pi(.|s_t) || ref(.|s_t)) is the same for every action of a state, so in
``E[A_t grad log pi(a_t|s_t)]`` it cancels, and the policy drifts as if there were no penalty.
"""

from __future__ import annotations

import numpy as np
import torch

from agents.base import Agent
from agents.config import PPOConfig
from agents.functional import (
    clipped_policy_loss,
    clipped_value_loss,
    entropy_from_logits,
    gae_advantages,
    masked_mean,
    masked_sum,
    selective_log_softmax,
)
from agents.rollout import RolloutBatch

__all__ = ["PPO"]


class PPO(Agent):
    """Proximal Policy Optimization on the LM policy (see the module docstring); config: `PPOConfig`."""

    config_class = PPOConfig
    config: PPOConfig  # what config_class builds
    uses_value_head = True
    name = "ppo"

    def update(self, rollout: RolloutBatch) -> dict[str, float]:
        config = self.config
        n = len(rollout)
        mask = rollout.completion_mask
        need_kl = self.needs_kl()
        epochs = self.epoch_minibatches(n)
        first = epochs[0][0] if epochs[0] else None  # the update's first minibatch (none without episodes)
        # the KL pass rescores the rollout (see LMPolicy) and keeps the first minibatch's forward for the first step
        rewards, kept = self.rewards_with_kl_penalty(rollout, keep_rows=first)
        rollout.advantages, rollout.returns = gae_advantages(rewards, rollout.values, mask, config.gamma, config.lam)
        if config.whiten_advantages:  # statistics of every rank's tokens
            rollout.advantages = self.dist.masked_whiten(rollout.advantages, mask)
        device = self.policy.device
        totals: dict[str, list[float]] = {}
        for minibatches in epochs:
            for rows in minibatches:
                if not len(rows):  # another rank has more replies this epoch: join its step without data
                    self.optimizer_step(None)
                    continue
                batch = rollout.select(rows).to(device)
                m = batch.completion_mask
                if kept is not None:  # the same forward at the same weights: not run twice
                    scored, kept = kept.policy, None
                else:
                    scored = self.policy.score(batch, temperature=config.temperature)
                logp = selective_log_softmax(scored.logits, batch.actions)
                assert batch.advantages is not None and batch.returns is not None  # set above, before the epochs
                assert scored.values is not None  # PPO's policy has a value head
                policy_loss, policy_stats = clipped_policy_loss(
                    logp, batch.logprobs, batch.advantages, m, config.clip_range
                )
                value_loss = clipped_value_loss(scored.values, batch.values, batch.returns, m, config.clip_range_value)
                with torch.set_grad_enabled(config.ent_coef > 0):  # else logged only: no backward through it
                    entropy = masked_mean(entropy_from_logits(scored.logits), m)
                loss = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy
                grad_norm = self.optimizer_step(loss, weight=m.sum())
                for key, value in (
                    ("losses/policy", policy_loss.item()),
                    ("losses/value", value_loss.item()),
                    ("losses/entropy", entropy.item()),
                    ("losses/approx_kl", policy_stats["approx_kl"].item()),
                    ("losses/clip_fraction", policy_stats["clip_fraction"].item()),
                    ("losses/grad_norm", grad_norm),
                ):
                    totals.setdefault(key, []).append(value)
        stats = {key: float(np.mean(values)) for key, values in totals.items()}
        if need_kl:  # not measured otherwise: leave it out rather than report a misleading 0
            assert rollout.kl is not None  # the KL pass of rewards_with_kl_penalty filled it
            kl_per_episode = self.dist.mean(float(masked_sum(rollout.kl, mask)), n)  # over every rank's episodes
            self.kl_controller.update(kl_per_episode, int(self.dist.sum([n])[0]))
            stats["rollout/kl"] = kl_per_episode
        stats["rollout/env_reward"] = self.dist.mean(float(rollout.rewards.sum()), n)
        return stats
