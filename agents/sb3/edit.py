"""A small SB3 policy path for TextEdit-v0: features of each candidate edit for ``MultiInputPolicy`` / MaskablePPO.

SB3's default ``CombinedExtractor`` would hand the candidates' token ids to an MLP as floats. `EditCandidateExtractor`
embeds the tokens instead and describes candidate i by what the edit changes: the sum of its result's token
embeddings minus the sum of the current text's (exactly the embeddings of the words it adds minus those it removes),
its operation (one-hot), its change in words and whether it is valid. The K + 1 rows, flattened, plus the edits
left, are the features; SB3's MLP heads then score the actions::

    from sb3_contrib import MaskablePPO
    model = MaskablePPO("MultiInputPolicy", env, policy_kwargs={"features_extractor_class": EditCandidateExtractor})

The candidates sit in random slots, so a plain MLP must learn the same judgement for each of the K + 1 slots.
`EditCandidatePolicy` (for sb3-contrib's MaskablePPO) scores every row with one shared network instead (the action
logits are permutation-equivariant), which learns from far fewer steps::

    model = MaskablePPO(EditCandidatePolicy, env)
"""

from __future__ import annotations

from typing import Any, cast

import torch
from gymnasium import spaces
from gymnasium.error import DependencyNotInstalled
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

try:
    from sb3_contrib.common.maskable.policies import MaskableMultiInputActorCriticPolicy
except ImportError:  # sb3-contrib is optional: EditCandidatePolicy then says how to install it
    MaskableMultiInputActorCriticPolicy = None  # type: ignore[assignment,misc]  # None marks it missing

__all__ = ["CandidateScorer", "EditCandidateExtractor", "EditCandidatePolicy"]

_KEYS = ("candidate_ids", "candidate_mask", "candidate_ops", "candidate_valid", "candidate_word_change", "edits_left")


class EditCandidateExtractor(BaseFeaturesExtractor):
    """Per-candidate features of a TextEdit-v0 'candidates' observation (see the module docstring).

    Args:
        observation_space: the env's Dict observation space (``action_mode="candidates"``).
        embedding_dim: width of the token embeddings.
    """

    def __init__(self, observation_space: spaces.Dict, embedding_dim: int = 16) -> None:
        given = observation_space.spaces if isinstance(observation_space, spaces.Dict) else {}
        missing = [key for key in _KEYS if key not in given]
        if missing:
            raise ValueError(
                f"Expected a TextEdit-v0 observation space with action_mode='candidates', got one without {missing}"
            )
        ids_space = cast(spaces.Box, observation_space["candidate_ids"])  # the spaces of edit_observation_space
        ops_space = cast(spaces.MultiDiscrete, observation_space["candidate_ops"])
        rows, _ = ids_space.shape
        self.rows = int(rows)
        self.num_ops = int(ops_space.nvec[0])
        edits_left = int(cast(spaces.Discrete, observation_space["edits_left"]).n)
        self.per_row = per_row = embedding_dim + self.num_ops + 2
        super().__init__(observation_space, features_dim=self.rows * per_row + edits_left)
        self.embedding = nn.Embedding(int(ids_space.high.max()) + 1, embedding_dim)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = observations["candidate_ids"].round().long()  # (B, K+1, L): SB3 hands Box observations over as float
        mask = observations["candidate_mask"].float()  # (B, K+1, L)
        bags = (self.embedding(ids) * mask[..., None]).sum(dim=2)  # (B, K+1, E): row 0 is the text itself
        change = bags - bags[:, :1]  # (B, K+1, E): embeddings added minus removed by each edit
        ops = observations["candidate_ops"].reshape(-1, self.rows, self.num_ops)  # (B, K+1, n_ops), one-hot by SB3
        words = observations["candidate_word_change"][..., None] / 10.0  # (B, K+1, 1)
        valid = observations["candidate_valid"][..., None].float()  # (B, K+1, 1)
        rows = torch.cat([change, ops, words, valid], dim=2)  # (B, K+1, E + n_ops + 2)
        return torch.cat([rows.flatten(1), observations["edits_left"].flatten(1)], dim=1)  # one-hot by SB3


class CandidateScorer(nn.Module):
    """Action logits from `EditCandidateExtractor` features: one shared MLP scores each candidate's row."""

    def __init__(self, rows: int, per_row: int, hidden: int = 64) -> None:
        super().__init__()
        self.rows, self.per_row = rows, per_row
        first, head = nn.Linear(per_row, hidden), nn.Linear(hidden, 1)
        self.mlp = nn.Sequential(first, nn.Tanh(), head)
        nn.init.orthogonal_(head.weight, gain=0.01)  # near-uniform first policy, as SB3 initialises its heads
        nn.init.zeros_(head.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        rows = features[:, : self.rows * self.per_row].reshape(-1, self.rows, self.per_row)  # (B, K+1, F)
        return self.mlp(rows).squeeze(-1)  # (B, K+1)


if MaskableMultiInputActorCriticPolicy is not None:

    class EditCandidatePolicy(MaskableMultiInputActorCriticPolicy):
        """MaskablePPO's Dict-observation policy with `EditCandidateExtractor` and a shared `CandidateScorer` head
        (the value head is SB3's MLP over the same features)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("features_extractor_class", EditCandidateExtractor)
            kwargs.setdefault("net_arch", {"pi": [], "vf": [64, 64]})  # pi: the features go to the scorer as they are
            super().__init__(*args, **kwargs)

        def _build(self, lr_schedule: Any) -> None:
            super()._build(lr_schedule)
            extractor = cast(EditCandidateExtractor, self.pi_features_extractor)  # features_extractor_class above
            self.action_net = CandidateScorer(extractor.rows, extractor.per_row)
            # SB3 types optimizer_class as the Optimizer base, whose constructor has no lr (SB3 ignores this too)
            self.optimizer = self.optimizer_class(  # type: ignore[call-arg]  # see above
                self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
            )

else:

    class EditCandidatePolicy:  # type: ignore[no-redef]  # the stand-in when sb3-contrib is missing
        """Placeholder that explains the missing dependency."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise DependencyNotInstalled('EditCandidatePolicy needs sb3-contrib. Run: pip install "textgen-env[train]"')
