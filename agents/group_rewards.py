"""GRPO's hook for group-level rewards: replace each `GroupReward`'s per-completion fallback by its group score.

The env scores every completion alone, so a `textgen_env.rewards.GroupReward` in its reward paid the fallback.
Once the rollout's groups are known, `apply_group_rewards` computes ``weight * (group score - fallback)`` for each
replaceable group reward (`textgen_env.rewards.group_terms`) and adds it to the episode's return and to the reward
of its last token. The fallback is recomputed on the final completion: in sparse and dense reward modes alike the
env paid exactly ``weight * fallback(final completion)`` for it over the episode.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from agents.rollout import RolloutBatch
from textgen_env.rewards import Reward, check_scores, group_terms, score_by_group

__all__ = ["apply_group_rewards"]


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
