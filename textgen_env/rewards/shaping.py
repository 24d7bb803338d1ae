"""Sparse and dense (potential-based) per-step rewards over a batch of episode slots.

* ``sparse``: the score f(prompt, completion) is paid once, at the step that ends the episode.
* ``dense``: every step pays r_t = f(text_t) - f(text_{t-1}) with f(text_0) = 0, so the rewards of an episode sum
  exactly to the sparse score and, being potential-based shaping, leave the optimal policy unchanged. The previous
  score is cached per slot, so a step costs one evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from textgen_env.rewards.base import Reward

__all__ = ["REWARD_MODES", "RewardShaper"]

REWARD_MODES = ("sparse", "dense")


class RewardShaper:
    """Turns a `Reward` into per-step rewards and per-step components for `num_slots` parallel episodes."""

    def __init__(self, reward: Reward, mode: Literal["sparse", "dense"], num_slots: int) -> None:
        if mode not in REWARD_MODES:
            raise ValueError(f"Expected reward_mode to be one of {list(REWARD_MODES)}, got {mode!r}")
        self.reward = reward
        self.mode = mode
        self._previous: dict[str, np.ndarray] = {}  # component -> (num_slots,) last score, dense mode only
        self.num_slots = num_slots

    def reset(self, slots: Sequence[int]) -> None:
        """Forget the cached scores of `slots` (their episodes start over from f = 0)."""
        for cached in self._previous.values():
            cached[list(slots)] = 0.0

    def step(
        self,
        slots: Sequence[int],
        prompts: Sequence[str],
        completions: Sequence[str],
        dones: Sequence[bool],
        references: Sequence[tuple[str, ...]] | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Rewards and components, each shaped ``(len(slots),)``, for one step of the given slots."""
        count = len(slots)
        slots_array = np.asarray(slots, dtype=np.int64)
        scored = np.flatnonzero(np.asarray(dones, dtype=bool)) if self.mode == "sparse" else np.arange(count)
        parts = {key: np.zeros(count) for key in self.reward.component_names}
        if len(scored):
            rows = scored.tolist()
            scores = self.reward.components(
                [prompts[i] for i in rows],
                [completions[i] for i in rows],
                [bool(dones[i]) for i in rows],
                None if references is None else [references[i] for i in rows],
            )
            for key, values in scores.items():
                parts[key] = np.zeros(count)  # a custom components() may add keys it did not declare
                if self.mode == "dense":
                    previous = self._previous.setdefault(key, np.zeros(self.num_slots))
                    parts[key][scored] = values - previous[slots_array[scored]]
                    previous[slots_array[scored]] = values
                else:
                    parts[key][scored] = values
        total = np.zeros(count)
        for values in parts.values():
            total += values
        return total, parts
