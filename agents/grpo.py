"""GRPO: several completions of the same prompt form a group; each is judged against its group, no critic.

Slots of the vector env are grouped (``group_size`` consecutive slots get the same reset seed, hence the same
prompt); the advantage of a completion is its return minus the group mean (divided by the group std when
``scale_rewards``), shared by all its tokens. The loss is the clipped surrogate plus kl_coef times the exact
per-token KL(pi || ref) with its gradient (KL in the loss, as in GRPO, rather than in the reward), at the states
the rollout visited. That per-state term alone misses half of grad KL(whole completion): the score-function part
``E[sum_t grad log pi(a_t|s_t) * sum_{t'>t} KL_t']``, the cost of steering into high-KL states. With
``kl_score_term`` (the default) the advantage of token t also gets ``-kl_coef * sum_{t'>t} KL_t'`` (`kl_to_go`, the
exact KL of the rollout policy, less the mean of the other group members' at that position: a leave-one-out baseline,
``kl_score_baseline``), so that, per token, the update follows grad of E[group advantage-weighted return]
- kl_coef * KL(pi || ref) of whole completions (``kl_estimator="k3"`` puts TRL's sampled-token k3 estimate in the
loss instead of the exact per-state KL: an ablation). The exact KL of the rollout policy comes from one no-grad pass
before the update (`LMPolicy.score_reference`); it is what is logged and what the adaptive controller reads.
Scoring uses the sampling temperature, for the policy and the reference alike.

In a conversation (TextDialogue-v0) the slots of a group start the same scenario with the same seed, and a group is
their replies at one turn of one collection round (`group_ids`): the first replies answer the very same prompt,
later ones the same scenario at the same turn, and a reply's return is the conversation's from that reply on.
Conversations can end after different numbers of turns, so a group can be smaller; a group of one gets advantage 0.

Group rewards (`textgen_env.rewards.GroupReward`): the env scores every completion alone, so a group reward in its
reward paid a per-completion fallback; once the rollout's groups are known, `apply_group_rewards` adds
``weight * (group score - fallback)`` to each episode's return and to the reward of its last token (the fallback is
recomputed on the final completion: in sparse and dense modes alike the env paid exactly ``weight * fallback``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from agents.base import Agent
from agents.config import GRPOConfig
from agents.functional import (
    clipped_policy_loss,
    exact_kl_from_logits,
    grouped_relative_advantages,
    kl_k3,
    kl_to_go,
    leave_one_out_baseline,
    masked_mean,
    masked_sum,
    selective_log_softmax,
)
from agents.rollout import Episode, RolloutBatch, collection_rounds, later_replies_total
from textgen_env import TextGenVectorEnv
from textgen_env.rewards import Reward, check_scores, group_terms, score_by_group

__all__ = ["GRPO", "apply_group_rewards", "group_ids"]


def group_ids(slots: torch.Tensor, turns: torch.Tensor, group_size: int) -> torch.Tensor:
    """(N,) int64 group of each episode: the same collection round, slot group (``slot // group_size``) and turn.

    `Agent.collect` lists each round's episodes in (slot, turn) order, so a round starts where that order restarts:
    episodes of different rounds (or of different ranks' rollouts joined) never share a group. For TextGen-v0 (one
    turn) the ids are ``arange(N) // group_size``.
    """
    keys = [
        (round_index, slot // group_size, turn)
        for round_index, slot, turn in zip(collection_rounds(slots, turns), slots.tolist(), turns.tolist())
    ]
    numbers = {key: i for i, key in enumerate(dict.fromkeys(keys))}  # in order of first appearance
    return torch.tensor([numbers[key] for key in keys], dtype=torch.int64)


def apply_group_rewards(reward: Any, rollout: RolloutBatch) -> dict[str, float]:
    """Rescore the group rewards of `reward` (the env's) over ``rollout.group_ids``; returns stats per group reward
    (``rollout/group/<name>``: the mean group score). A no-op returning ``{}`` when `reward` has none."""
    if not isinstance(reward, Reward):
        return {}
    replaceable, nested = group_terms(reward)
    if nested:
        names = sorted({group.name for group in nested})
        warnings.warn(
            f"Group rewards {names} sit inside a Sequential/Gate rubric, so GRPO keeps their per-completion fallback; "
            "put a group reward at the top of the reward or in a weighted mix for group scoring",
            stacklevel=2,
        )
    if not replaceable:
        return {}
    if rollout.group_ids is None:
        raise ValueError("Expected rollout.group_ids to be set before apply_group_rewards, got None")
    group_ids = rollout.group_ids.tolist()
    delta = np.zeros(len(rollout))
    stats: dict[str, float] = {}
    for group_reward, weight in replaceable:
        grouped = score_by_group(group_reward, rollout.prompts, rollout.completions, group_ids)
        fallback = check_scores(
            group_reward.name,
            group_reward(rollout.prompts, rollout.completions, [True] * len(rollout)),
            rollout.prompts,
        )
        delta += weight * (grouped - fallback)
        stats[f"rollout/group/{group_reward.name}"] = float(grouped.mean())
    rollout.scores += torch.from_numpy(delta)
    lengths = rollout.completion_lengths
    rows = torch.nonzero(lengths > 0).flatten()  # an empty completion has no token to carry it; its return still moves
    rollout.rewards[rows, lengths[rows] - 1] += torch.from_numpy(delta).to(rollout.rewards.dtype)[rows]
    return stats


class GRPO(Agent):
    """Group Relative Policy Optimization; config: `GRPOConfig`."""

    config_class = GRPOConfig
    config: GRPOConfig  # what config_class builds
    name = "grpo"

    def __init__(self, env, config=None, **kwargs) -> None:
        super().__init__(env, config, **kwargs)  # refuses envs other than TextGen-v0 and TextDialogue-v0
        size = self.config.group_size
        if self.env.num_envs % size:
            raise ValueError(
                f"Expected the env's num_envs to be a multiple of group_size={size}, got num_envs={self.env.num_envs}"
            )
        if self.dist.enabled:  # each rank's share holds whole groups, so no group straddles two ranks
            self.dist.share(self.config.episodes_per_iteration, "episodes_per_iteration", multiple_of=size)
        if self.config.max_resample_rounds:
            if not isinstance(self.env, TextGenVectorEnv):
                raise ValueError(
                    "Expected max_resample_rounds=0 on TextDialogue-v0 (zero-variance filtering drops whole groups of "
                    f"TextGen-v0 completions), got {self.config.max_resample_rounds}"
                )
            replaceable, nested = group_terms(self.env.reward) if isinstance(self.env.reward, Reward) else ([], [])
            if replaceable or nested:
                raise ValueError(
                    "Expected max_resample_rounds=0 with a group reward (the filter reads per-completion returns, "
                    f"which a group reward replaces), got {self.config.max_resample_rounds}"
                )
        self._filter_stats: dict[str, float] = {}

    def reset_seeds(self, round_index: int) -> list[int]:
        """The slots of one group share a seed, so they start from the same prompt (or the same scenario)."""
        seeds = super().reset_seeds(round_index)
        size = self.config.group_size
        return [seeds[i - i % size] for i in range(len(seeds))]

    def collect_for_update(self) -> RolloutBatch:
        """As `Agent.collect_for_update`; with ``max_resample_rounds`` the groups whose returns are all equal are
        dropped and replaced by those of up to that many extra rounds (fresh prompts), dropped ones filling any
        shortfall. `collect` keeps every group, so an evaluation through it is not filtered."""
        rounds = self.config.max_resample_rounds
        if not rounds:
            return super().collect_for_update()
        wanted, temperature, size = self.episodes_per_rank, self.config.temperature, self.config.group_size
        needed = -(-wanted // self.env.num_envs)  # rounds without filtering
        kept: list[Episode] = []
        dropped: list[list[Episode]] = []
        groups = round_index = 0
        while len(kept) < wanted and round_index < needed + rounds:
            episodes = self._collect_round(self.reset_seeds(round_index), temperature)
            round_index += 1
            for start in range(0, len(episodes), size):
                group = episodes[start : start + size]
                groups += 1
                if len({episode.score for episode in group}) > 1:
                    kept.extend(group)
                else:
                    dropped.append(group)
        zero_variance, refilled = len(dropped), 0
        while len(kept) < wanted and dropped:  # out of extra rounds: the last dropped groups fill the rest
            kept.extend(dropped.pop())
            refilled += 1
        self._filter_stats = {
            "rollout/zero_variance_groups": zero_variance / groups,  # the fraction of the groups collected
            "rollout/dropped_groups": float(len(dropped)),  # thrown away
            "rollout/zero_variance_kept": float(refilled),  # kept for want of others
        }
        # in collection order: `group_ids` sees a new round wherever (slot, turn) stops increasing, so no two kept
        # groups share an id (two groups with the same slots are always a restart apart)
        return RolloutBatch.from_episodes(kept, self.policy.tokenizer.pad_token_id)

    def update(self, rollout: RolloutBatch) -> dict[str, float]:
        config = self.config
        n = len(rollout)
        rollout.group_ids = group_ids(rollout.slots, rollout.turns, config.group_size)
        group_stats = apply_group_rewards(getattr(self.env, "reward", None), rollout)  # GroupReward parts, if any
        advantages = grouped_relative_advantages(  # (N,): one per completion, shared by its tokens
            rollout.scores.float(), rollout.group_ids, normalize_std=config.scale_rewards
        )
        rollout.advantages = advantages[:, None].expand_as(rollout.logprobs)
        device = self.policy.device
        beta = self.kl_controller.value
        need_kl = self.needs_kl()
        epochs = self.epoch_minibatches(n)
        first = epochs[0][0] if epochs[0] else None  # the update's first minibatch (none without episodes)
        kept = None
        if need_kl:  # the exact KL of the rollout policy, before any step: for the controller and the score term
            kept = self.policy.score_reference(  # and the first minibatch's forwards, for the first step
                rollout, temperature=config.temperature, chunk_size=config.minibatch_size, keep_rows=first
            )
            assert rollout.kl is not None  # set just above
            if config.kl_score_term and beta > 0:
                to_go = kl_to_go(rollout.kl, rollout.completion_mask)  # (N, T)
                if bool((rollout.turns > 0).any()):  # a reply also leads to its conversation's later replies' KL
                    later = later_replies_total(
                        masked_sum(rollout.kl, rollout.completion_mask, dim=1), rollout.slots, rollout.turns
                    )
                    to_go = torch.where(rollout.completion_mask, to_go + later[:, None].to(to_go.dtype), to_go)
                if config.kl_score_baseline:
                    to_go = to_go - leave_one_out_baseline(to_go, rollout.completion_mask, rollout.group_ids)
                rollout.advantages = rollout.advantages - beta * to_go
        totals: dict[str, list[float]] = {}
        for minibatches in epochs:
            for rows in minibatches:
                if not len(rows):  # another rank has more replies this epoch: join its step without data
                    self.optimizer_step(None)
                    continue
                batch = rollout.select(rows).to(device)
                m = batch.completion_mask
                ref_logits = None
                if kept is not None:  # the KL pass's forwards at the same weights: not run twice
                    scored, ref_logits, kept = kept.policy, kept.reference_logits, None
                else:
                    scored = self.policy.score(batch, temperature=config.temperature)
                logp = selective_log_softmax(scored.logits, batch.actions)
                assert batch.advantages is not None  # set before the epochs
                policy_loss, policy_stats = clipped_policy_loss(
                    logp, batch.logprobs, batch.advantages, m, config.clip_range
                )
                loss = policy_loss
                if beta > 0:
                    if config.kl_estimator == "k3":  # TRL's: the sampled token's k3, gradient through log pi(a)
                        assert batch.reference_logprobs is not None  # the KL pass ran (beta > 0 needs it)
                        # the reference's log-probs of the chosen tokens are the KL pass's: no reference forward;
                        # on padding the log-ratio is 0 (exp of a large -log pi there could overflow to inf * 0)
                        reference = torch.where(m, batch.reference_logprobs, logp.detach())
                        per_token = kl_k3(logp, reference)
                    else:
                        if ref_logits is None:
                            ref_logits = self.policy.reference_logits(batch, temperature=config.temperature)
                        per_token = exact_kl_from_logits(scored.logits, ref_logits)
                    kl = masked_mean(per_token, m)
                    loss = loss + beta * kl
                    name = "losses/kl_k3_per_token" if config.kl_estimator == "k3" else "losses/kl_per_token"
                    totals.setdefault(name, []).append(kl.item())  # the moving policy's, as the loss has it
                grad_norm = self.optimizer_step(loss, weight=m.sum())
                for key, value in (
                    ("losses/policy", policy_loss.item()),
                    ("losses/clip_fraction", policy_stats["clip_fraction"].item()),
                    ("losses/grad_norm", grad_norm),
                ):
                    totals.setdefault(key, []).append(value)
        stats = {key: float(np.mean(values)) for key, values in totals.items()} | group_stats | self._filter_stats
        if need_kl:
            assert rollout.kl is not None  # the pass before the update filled it
            mask = rollout.completion_mask
            kl_sum, tokens = float(masked_sum(rollout.kl, mask)), rollout.num_tokens
            stats["rollout/kl"] = self.dist.mean(kl_sum, n)  # per completion, over every rank's
            stats["rollout/kl_per_token"] = self.dist.mean(kl_sum, tokens)
            self.kl_controller.update(stats["rollout/kl"], int(self.dist.sum([n])[0]))
        return stats
