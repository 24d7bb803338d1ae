"""The rollout every algorithm reads: finished episodes as the agent saw them, padded into tensors on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agents.policy import EpisodeTensors

__all__ = ["Episode", "Rollout"]


@dataclass
class Episode:
    """One finished episode as the agent saw it."""

    prompt: str
    completion: str
    prompt_ids: list[int]
    completion_ids: list[int]
    rewards: list[float]
    """The env's reward for each token."""
    logprobs: list[float]
    """Log-probabilities of the chosen tokens under the rollout policy."""
    values: list[float] = field(default_factory=list)
    """Value estimates of the states before each token (empty without a value head)."""
    slot: int = 0
    """The vector env slot the episode ran in."""
    turn: int = 0
    """The reply's index in its conversation (TextDialogue-v0); 0 for a TextGen-v0 completion."""

    @property
    def score(self) -> float:
        """The episode's return from the env."""
        return float(sum(self.rewards))


@dataclass
class Rollout:
    """The episodes of one iteration."""

    episodes: list[Episode]

    def batch(self, indices: list[int] | np.ndarray, pad_token_id: int, device: torch.device) -> EpisodeTensors:
        chosen = [self.episodes[i] for i in indices]
        return EpisodeTensors.from_token_lists(
            [e.prompt_ids for e in chosen], [e.completion_ids for e in chosen], pad_token_id, device
        )

    def padded(self, name: str, indices: list[int] | np.ndarray, width: int) -> torch.Tensor:
        """(len(indices), width) float32 tensor of a per-token list attribute, zero-padded."""
        out = torch.zeros((len(indices), width), dtype=torch.float32)
        for row, i in enumerate(indices):
            values = getattr(self.episodes[i], name)
            out[row, : len(values)] = torch.tensor(values, dtype=torch.float32)
        return out


def _new_record() -> dict[str, list]:
    return {"actions": [], "rewards": [], "logprobs": [], "values": []}


def _prompt_ids(obs: dict[str, np.ndarray], slots: Any) -> list[list[int]]:
    """The unpadded prompt tokens of `slots` in a token observation."""
    ids, mask = obs["input_ids"], obs["attention_mask"].astype(bool)
    return [ids[i][mask[i]].tolist() for i in slots]
