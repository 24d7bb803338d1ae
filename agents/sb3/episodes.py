"""Whole-episode SB3 updates: a rollout buffer that yields minibatches of whole episodes, and the chain finder that
lets `LMActorCriticPolicy.evaluate_actions` score all steps of an episode with one forward.

Stock SB3 shuffles single steps into minibatches, so each step's observation (its prompt and every token so far) is
run through the LM on its own: an episode of T tokens costs T forwards over up to L tokens, per epoch. Yet step t's
observation is a prefix of step t+1's, and a causal LM's outputs at a position depend only on the tokens before it:
one forward over an episode's last observation gives the logits and values of all its steps.

`EpisodeRolloutBuffer` (``PPO(..., rollout_buffer_class=EpisodeRolloutBuffer)``, also A2C) keeps each episode's
steps together and in order; `token_chains` finds, in any batch of observations, the runs of rows where each row is
the previous row plus that row's action. Rows that form no chain (stock shuffled buffers) are scored one by one as
before, so the policy is correct with any buffer and fast with this one.

SB3's estimator stays the same: PPO normalises advantages per minibatch, and over minibatches of whole episodes the
mean would contain the episode itself (with one episode per minibatch of a bandit-like task every normalised
advantage is 0). So the buffer normalises once over the rollout (``rollout_buffer_kwargs={"normalize_advantage":
True}``) and PPO must not normalise again (``normalize_advantage=False``; the buffer refuses the combination).
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any, NamedTuple

import numpy as np
import torch
from stable_baselines3.common.buffers import DictRolloutBuffer
from stable_baselines3.common.type_aliases import DictRolloutBufferSamples

__all__ = ["EpisodeRolloutBuffer", "TokenChains", "episode_segments", "token_chains"]


class TokenChains(NamedTuple):
    """Rows of a batch grouped into chains of consecutive observations of one episode."""

    ends: torch.Tensor
    """(C,) the row that ends each chain: its observation holds every other row's of the chain as a prefix."""
    chain: torch.Tensor
    """(B,) the chain of each row."""
    offset: torch.Tensor
    """(B,) how many tokens each row's observation is shorter than its chain's end (0 for the end row)."""


def token_chains(input_ids: torch.Tensor, attention_mask: torch.Tensor, actions: torch.Tensor) -> TokenChains:
    """Group rows of left-padded token observations into chains: row k continues row k-1 when it is exactly row
    k-1's tokens followed by row k-1's action (so both are steps of one episode and row k-1 is a prefix of row k).

    Args:
        input_ids: (B, L) int token ids, left-padded.
        attention_mask: (B, L) 1 on tokens, 0 on padding.
        actions: (B,) the token chosen at each row.
    """
    ids, mask, actions = input_ids.long(), attention_mask.long(), actions.long().reshape(-1)
    rows = ids.shape[0]
    continues = torch.zeros(rows, dtype=torch.bool, device=ids.device)
    if rows > 1:
        continues[1:] = (
            (ids[1:, :-1] == ids[:-1, 1:]).all(dim=1)
            & (mask[1:, :-1] == mask[:-1, 1:]).all(dim=1)
            & (mask[:-1, 0] == 0)  # row k-1 lost no token to the shift
            & (mask[1:, -1] == 1)
            & (ids[1:, -1] == actions[:-1])
        )
    chain = torch.cumsum(~continues, dim=0) - 1  # (B,)
    count = int(chain[-1]) + 1 if rows else 0
    ends = torch.zeros(count, dtype=torch.long, device=ids.device).scatter_reduce(
        0, chain, torch.arange(rows, device=ids.device), reduce="amax", include_self=False
    )
    return TokenChains(ends=ends, chain=chain, offset=ends[chain] - torch.arange(rows, device=ids.device))


def episode_segments(episode_starts: np.ndarray) -> list[np.ndarray]:
    """Indices into SB3's env-major flattened buffer of each run of steps of one episode.

    Args:
        episode_starts: (n_steps, n_envs) SB3's flags, 1 where a step's observation starts an episode. Episodes cut
            by the rollout's ends make segments too (the first steps continue an episode of the previous rollout).
    """
    n_steps, n_envs = episode_starts.shape
    segments = []
    for env in range(n_envs):
        cuts = np.flatnonzero(episode_starts[1:, env] > 0) + 1
        for piece in np.split(np.arange(n_steps), cuts):
            segments.append(env * n_steps + piece)  # swap_and_flatten puts env e's steps at e*n_steps + t
    return segments


class EpisodeRolloutBuffer(DictRolloutBuffer):
    """SB3's `DictRolloutBuffer` whose minibatches hold whole episodes, each one's steps in order.

    ``get(batch_size)`` shuffles the episodes (with numpy's global generator, which SB3 seeds), splits the few that
    are longer than `batch_size` steps into consecutive pieces, and packs them into minibatches of at most
    `batch_size` steps; every step of the rollout is yielded once per epoch, as with the stock buffer. Minibatches
    vary in size, so the last one of an epoch may be small. Pass it to SB3's ``PPO`` or ``A2C`` with
    ``rollout_buffer_class=EpisodeRolloutBuffer``; `LMActorCriticPolicy` then scores each episode with one forward.

    For PPO also pass ``normalize_advantage=False, rollout_buffer_kwargs={"normalize_advantage": True}``: the
    advantages are then normalised once over the rollout (SB3 normalises per minibatch of random steps, which over
    minibatches of whole episodes is another estimator); PPO's own per-minibatch normalisation is refused when a
    minibatch is smaller than the rollout.

    Args:
        normalize_advantage: normalise the advantages to zero mean and unit std over the whole rollout, once.
    """

    def __init__(self, *args: Any, normalize_advantage: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(normalize_advantage, bool):
            raise ValueError(f"Expected normalize_advantage to be a bool, got {normalize_advantage!r}")
        self.normalize_advantage = normalize_advantage

    def get(  # type: ignore[override]  # narrower than SB3's buffer get, by design
        self, batch_size: int | None = None
    ) -> Generator[DictRolloutBufferSamples, None, None]:
        assert self.full, "the rollout buffer must be full before its minibatches are read"
        total = self.buffer_size * self.n_envs
        batch_size = total if batch_size is None else batch_size
        if batch_size < 1:
            raise ValueError(f"Expected batch_size >= 1, got {batch_size}")
        algorithm = sys._getframe(1).f_locals.get("self")  # the caller of next(), e.g. PPO.train
        if getattr(algorithm, "normalize_advantage", False) and batch_size < total:
            raise ValueError(
                f"Expected normalize_advantage=False for {type(algorithm).__name__} with EpisodeRolloutBuffer (per-"
                "minibatch normalisation over whole episodes changes SB3's estimator; with one episode per minibatch "
                "every advantage can become 0), got True: pass normalize_advantage=False and "
                "rollout_buffer_kwargs={'normalize_advantage': True} to normalise once over the rollout"
            )
        segments = episode_segments(self.episode_starts)
        order = np.random.permutation(len(segments))
        if not self.generator_ready:
            for key, obs in self.observations.items():
                self.observations[key] = self.swap_and_flatten(obs)
            for name in ("actions", "values", "log_probs", "advantages", "returns"):
                self.__dict__[name] = self.swap_and_flatten(self.__dict__[name])
            if self.normalize_advantage:  # SB3's (a - mean) / (std + 1e-8), over the rollout instead of a minibatch
                self.advantages = (self.advantages - self.advantages.mean()) / (self.advantages.std() + 1e-8)
            self.generator_ready = True
        pieces = [
            segments[i][start : start + batch_size] for i in order for start in range(0, len(segments[i]), batch_size)
        ]
        batch: list[np.ndarray] = []
        size = 0
        for piece in pieces:
            if size + len(piece) > batch_size:
                yield self._get_samples(np.concatenate(batch))
                batch, size = [], 0
            batch.append(piece)
            size += len(piece)
        if batch:
            yield self._get_samples(np.concatenate(batch))
