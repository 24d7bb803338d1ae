"""`RolloutBatch`: the one container of an iteration's episodes, padded once, from collection to the last loss.

Collection records each slot's tokens as an `Episode` (plain lists, one per finished episode or reply); the agent
then pads them once into a `RolloutBatch`, and everything after (the reference pass, KL terms, advantages, returns,
minibatches, losses, the distributed reduction, evaluation) reads and fills that one object. A minibatch is
`RolloutBatch.select(rows)`: the same tensors for those rows, trimmed to the rows' own prompt and completion widths,
so a forward over a minibatch sees exactly the tokens (and padding) it would see if the rows had been padded alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch

__all__ = ["Episode", "Rollout", "RolloutBatch", "collection_rounds", "conversation_ids", "later_replies_total"]


@dataclass
class Episode:
    """One finished episode (or conversation reply) as the agent collected it: plain lists, before padding."""

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
    env_token_mask: list[bool] = field(default_factory=list)
    """Per completion token, True where the env inserted it (a tool result): the policy conditioned on it but did not
    choose it, so it is no action (its log-prob, value and reward are 0). Empty: every token is an action."""
    info: dict[str, Any] = field(default_factory=dict)
    """What the env's last step reported about the episode (`agents.episode_loop.EPISODE_INFO_KEYS`: the task item and
    its scores, the tool calls, the stop reason), where it reported it."""

    @property
    def score(self) -> float:
        """The episode's return from the env."""
        return float(sum(self.rewards))

    @property
    def num_actions(self) -> int:
        """Tokens the policy chose (the completion minus env-inserted tokens)."""
        return len(self.completion_ids) - sum(self.env_token_mask)


_PER_ROW = ("scores", "slots", "turns", "group_ids", "prompt_lengths")  # (N,) tensors
_PER_TOKEN = ("completion_mask", "logprobs", "values", "rewards", "reference_logprobs", "kl", "advantages", "returns")


@dataclass
class RolloutBatch:
    """N episodes as padded tensors: each row is a left-padded prompt followed by a right-padded completion, so the
    logits that predict completion token t sit at the same column for every row.

    The collected fields are set by `from_episodes`; the ones below ``reference_logprobs`` start as None and are
    filled by the update that needs them (`agents.policy.LMPolicy.score_reference`, the algorithms' advantages).
    Per-token tensors are (N, T) float32 on the CPU, 0 on padding; per-row tensors are (N,).
    """

    input_ids: torch.Tensor
    """(N, P + T) int64 token ids: prompt then completion."""
    attention_mask: torch.Tensor
    """(N, P + T) int64, 1 on real tokens."""
    prompt_length: int
    """P, the padded prompt width."""
    completion_mask: torch.Tensor
    """(N, T) bool, True on the tokens the policy chose (the actions); env-inserted tokens (tool results) and padding
    are False, so every loss, value target and KL term that masks with it leaves them out."""
    logprobs: torch.Tensor
    """(N, T) log pi(a_t|s_t) of the chosen tokens under the rollout (behaviour) policy, at its temperature."""
    values: torch.Tensor
    """(N, T) value estimates of the states before each token (zeros without a value head)."""
    rewards: torch.Tensor
    """(N, T) the env's reward for each token."""
    scores: torch.Tensor
    """(N,) float64 each episode's return from the env (its rewards summed in float64)."""
    slots: torch.Tensor
    """(N,) int64 the vector env slot of each episode."""
    turns: torch.Tensor
    """(N,) int64 the reply's index in its conversation (0 for TextGen-v0)."""
    prompt_lengths: torch.Tensor
    """(N,) int64 real prompt tokens of each row."""
    prompts: list[str]
    """The prompt text of each row (the conversation so far for a reply)."""
    completions: list[str]
    """The completion text of each row."""
    reference_logprobs: torch.Tensor | None = None
    """(N, T) log ref(a_t|s_t) of the chosen tokens under the frozen reference."""
    kl: torch.Tensor | None = None
    """(N, T) exact per-token KL(pi(.|s_t) || ref(.|s_t)) of the rollout policy."""
    advantages: torch.Tensor | None = None
    """(N, T) the algorithm's advantages."""
    returns: torch.Tensor | None = None
    """(N, T) the algorithm's return targets."""
    group_ids: torch.Tensor | None = None
    """(N,) int64 GRPO's group of each row."""

    # ----------------------------------------------------------------------------------------------- building
    @classmethod
    def from_episodes(cls, episodes: Sequence[Episode], pad_token_id: int) -> RolloutBatch:
        """Pad `episodes` once (see the class docstring)."""
        if not episodes:
            raise ValueError("Expected at least one episode to pad, got none")
        batch = cls.from_token_lists(
            [e.prompt_ids for e in episodes],
            [e.completion_ids for e in episodes],
            pad_token_id,
            prompts=[e.prompt for e in episodes],
            completions=[e.completion for e in episodes],
        )
        for name in ("logprobs", "values", "rewards"):
            target = getattr(batch, name)
            for row, episode in enumerate(episodes):
                values = getattr(episode, name)
                target[row, : len(values)] = torch.tensor(values, dtype=torch.float32)
        for row, episode in enumerate(episodes):
            if any(episode.env_token_mask):
                if len(episode.env_token_mask) != len(episode.completion_ids):
                    raise ValueError(
                        f"Expected an env_token_mask of {len(episode.completion_ids)} entries (one per completion "
                        f"token), got {len(episode.env_token_mask)}"
                    )
                inserted = torch.tensor(episode.env_token_mask, dtype=torch.bool)
                batch.completion_mask[row, : len(inserted)] &= ~inserted
        batch.scores = torch.tensor([e.score for e in episodes], dtype=torch.float64)
        batch.slots = torch.tensor([e.slot for e in episodes], dtype=torch.int64)
        batch.turns = torch.tensor([e.turn for e in episodes], dtype=torch.int64)
        return batch

    @classmethod
    def from_token_lists(
        cls,
        prompt_ids: Sequence[Sequence[int]],
        completion_ids: Sequence[Sequence[int]],
        pad_token_id: int,
        *,
        prompts: list[str] | None = None,
        completions: list[str] | None = None,
    ) -> RolloutBatch:
        """Lay out token-id lists as a batch with zero logprobs, values and rewards (for scoring given texts)."""
        width_p = max(len(p) for p in prompt_ids)
        width_t = max(max(len(c) for c in completion_ids), 1)
        n = len(prompt_ids)
        input_ids = torch.full((n, width_p + width_t), pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((n, width_p + width_t), dtype=torch.long)
        for row, (prompt, completion) in enumerate(zip(prompt_ids, completion_ids)):
            input_ids[row, width_p - len(prompt) : width_p] = torch.as_tensor(list(prompt))
            attention_mask[row, width_p - len(prompt) : width_p] = 1
            if completion:
                input_ids[row, width_p : width_p + len(completion)] = torch.as_tensor(list(completion))
                attention_mask[row, width_p : width_p + len(completion)] = 1
        zeros = torch.zeros((n, width_t), dtype=torch.float32)
        return cls(
            input_ids=input_ids,
            attention_mask=attention_mask,
            prompt_length=width_p,
            completion_mask=attention_mask[:, width_p:].bool().clone(),
            logprobs=zeros,
            values=zeros.clone(),
            rewards=zeros.clone(),
            scores=torch.zeros(n, dtype=torch.float64),
            slots=torch.zeros(n, dtype=torch.int64),
            turns=torch.zeros(n, dtype=torch.int64),
            prompt_lengths=torch.tensor([len(p) for p in prompt_ids], dtype=torch.int64),
            prompts=prompts if prompts is not None else [""] * n,
            completions=completions if completions is not None else [""] * n,
        )

    @classmethod
    def concat(cls, batches: Sequence[RolloutBatch], pad_token_id: int) -> RolloutBatch:
        """The rows of `batches` in order as one batch, padded anew (for example the ranks' rollouts joined);
        returns keep their float64 sums."""
        joined = cls.from_episodes([e for b in batches for e in b.to_episodes()], pad_token_id)
        joined.scores = torch.cat([b.scores for b in batches])
        return joined

    # ------------------------------------------------------------------------------------------------- reading
    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def actions(self) -> torch.Tensor:
        """(N, T) the completion tokens (padding where completion_mask is False)."""
        return self.input_ids[:, self.prompt_length :]

    @property
    def completion_lengths(self) -> torch.Tensor:
        """(N,) int64 tokens the policy chose in each row."""
        return self.completion_mask.sum(dim=1)

    @property
    def completion_widths(self) -> torch.Tensor:
        """(N,) int64 completion tokens of each row, env-inserted ones included (its width after the prompt)."""
        return self.attention_mask[:, self.prompt_length :].sum(dim=1)

    @property
    def env_token_mask(self) -> torch.Tensor:
        """(N, T) bool, True on env-inserted completion tokens (real tokens that are not actions)."""
        return self.attention_mask[:, self.prompt_length :].bool() & ~self.completion_mask

    @property
    def num_tokens(self) -> int:
        """Tokens the policy chose in the whole batch."""
        return int(self.completion_mask.sum())

    def to_episodes(self) -> list[Episode]:
        """The rows back as `Episode` lists (the inverse of `from_episodes`): for replay buffers and for joining
        batches (``RolloutBatch.from_episodes(a.to_episodes() + b.to_episodes(), pad)``)."""
        out = []
        for row in range(len(self)):
            p, t = int(self.prompt_lengths[row]), int(self.completion_widths[row])
            inserted = self.env_token_mask[row, :t].tolist()
            out.append(
                Episode(
                    prompt=self.prompts[row],
                    completion=self.completions[row],
                    prompt_ids=self.input_ids[row, self.prompt_length - p : self.prompt_length].tolist(),
                    completion_ids=self.actions[row, :t].tolist(),
                    rewards=self.rewards[row, :t].tolist(),
                    logprobs=self.logprobs[row, :t].tolist(),
                    values=self.values[row, :t].tolist(),
                    slot=int(self.slots[row]),
                    turn=int(self.turns[row]),
                    env_token_mask=inserted if any(inserted) else [],
                )
            )
        return out

    def select(self, rows: Sequence[int] | np.ndarray | torch.Tensor) -> RolloutBatch:
        """The batch of `rows`, trimmed to their widest prompt and completion (a minibatch view: no re-padding)."""
        index = torch.as_tensor(np.asarray(rows), dtype=torch.int64)
        width_p = int(self.prompt_lengths[index].max())
        width_t = max(int(self.completion_widths[index].max()), 1)
        start, stop = self.prompt_length - width_p, self.prompt_length + width_t
        chosen = index.tolist()
        updates: dict[str, Any] = {
            "input_ids": self.input_ids[index, start:stop],
            "attention_mask": self.attention_mask[index, start:stop],
            "prompt_length": width_p,
            "prompts": [self.prompts[i] for i in chosen],
            "completions": [self.completions[i] for i in chosen],
        }
        for name in _PER_TOKEN:
            value = getattr(self, name)
            updates[name] = None if value is None else value[index, :width_t]
        for name in _PER_ROW:
            value = getattr(self, name)
            updates[name] = None if value is None else value[index]
        return replace(self, **updates)

    def to(self, device: torch.device | str) -> RolloutBatch:
        """The batch with every tensor on `device`."""
        updates = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return replace(self, **updates)


Rollout = RolloutBatch
"""The name of 0.1 (then a list of episodes); one container now."""


def collection_rounds(slots: torch.Tensor, turns: torch.Tensor) -> list[int]:
    """The collection round of each row. `Agent.collect` lists each round's episodes in (slot, turn) order, so a
    round starts wherever that order stops increasing (also where a round's rows were filtered out)."""
    rounds: list[int] = []
    round_index, previous = 0, None
    for slot, turn in zip(slots.tolist(), turns.tolist()):
        if previous is not None and (slot, turn) <= previous:
            round_index += 1
        previous = (slot, turn)
        rounds.append(round_index)
    return rounds


def conversation_ids(slots: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """(N,) int64 the conversation of each row: its collection round and slot (a TextGen-v0 row is its own)."""
    keys = list(zip(collection_rounds(slots, turns), slots.tolist()))
    numbers = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    return torch.tensor([numbers[key] for key in keys], dtype=torch.int64)


def later_replies_total(per_row: torch.Tensor, slots: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """(N,) for each reply, the sum of `per_row` (N,) over the later replies of its conversation (0 for the last).

    What a reply is charged for the rest of its conversation: the env already adds later replies' rewards to a
    reply's return (`Agent.collect`); the agents add later replies' KL the same way."""
    if per_row.shape != slots.shape or slots.shape != turns.shape:
        raise ValueError(
            f"Expected per_row, slots and turns of one shape, got {tuple(per_row.shape)}, {tuple(slots.shape)} "
            f"and {tuple(turns.shape)}"
        )
    conversation = conversation_ids(slots, turns).to(per_row.device)
    same = conversation[:, None] == conversation[None, :]  # (N, N)
    later = turns.to(per_row.device)[None, :] > turns.to(per_row.device)[:, None]  # (N, N): row j after row i
    return ((same & later).to(per_row.dtype) * per_row[None, :]).sum(dim=1)
