"""The LM as the policy of TextEdit-v0: it scores each candidate edit by log-probability, REINFORCE trains it.

The policy over the K + 1 actions of a 'candidates' observation is
``pi(i | s) = softmax_i(mean log p_LM(result_i | instruction + text + separator) / temperature)`` over the valid
candidates, where result_i is candidate i's text (row 0, STOP, is the text itself): the LM prefers the revision it
finds most likely as a continuation of "Improve this text". `EditReinforce` then raises the log-probability of the
edits that paid (REINFORCE with the batch-mean return as baseline, returns-to-go with gamma = 1), so training moves
the LM itself toward better edits; the env stays untouched (any Gymnasium agent could edit the same drafts).

    env = TextEditVectorEnv(num_envs=4, model=model, tokenizer=tokenizer, reward="sentiment")
    agent = EditReinforce(LMPolicy(copy.deepcopy(model), tokenizer, value_head=False), EditReinforceConfig())
    agent.learn(env, iterations=10)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agents.functional import selective_log_softmax
from agents.policy import LMPolicy
from agents.rollout import RolloutBatch

__all__ = ["EditPPO", "EditPPOConfig", "EditReinforce", "EditReinforceConfig", "candidate_logits"]


@dataclass(frozen=True)
class EditReinforceConfig:
    """Settings of `EditReinforce`."""

    learning_rate: float = 1e-4
    """Adam's step size for the LM weights."""
    temperature: float = 1.0
    """Divides the candidates' mean log-probs before the softmax over them (> 0)."""
    instruction: str = "Improve this text: "
    """Text before the current text in each candidate's prompt."""
    separator: str = " Revised: "
    """Text between the current text and the candidate's result."""
    seed: int = 0
    """Seeds the action sampling."""

    def __post_init__(self) -> None:
        for name in ("learning_rate", "temperature"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"Expected {name} to be a finite number > 0, got {value!r}")
        if not isinstance(self.instruction, str) or not isinstance(self.separator, str):
            raise TypeError("Expected instruction and separator to be str")


def _unpadded(ids: np.ndarray, mask: np.ndarray) -> list[int]:
    return ids[mask == 1].tolist()


def candidate_logits(
    policy: LMPolicy, obs: dict[str, np.ndarray], config: EditReinforceConfig, *, grad: bool = False
) -> torch.Tensor:
    """(N, K + 1) logits of the policy over a batch of 'candidates' observations; invalid slots are -inf."""
    tokenizer = policy.tokenizer
    prefix = tokenizer(config.instruction, add_special_tokens=False)["input_ids"]
    separator = tokenizer(config.separator, add_special_tokens=False)["input_ids"]
    valid = torch.as_tensor(np.asarray(obs["candidate_valid"]), dtype=torch.bool)  # (N, K+1)
    rows, prompts, results = [], [], []
    for n in range(valid.shape[0]):
        text = _unpadded(obs["text_ids"][n], obs["text_mask"][n])
        for i in np.flatnonzero(valid[n].numpy()):
            rows.append((n, int(i)))
            prompts.append(list(prefix) + text + list(separator))
            results.append(_unpadded(obs["candidate_ids"][n, i], obs["candidate_mask"][n, i]))
    batch = RolloutBatch.from_token_lists(prompts, results, tokenizer.pad_token_id).to(policy.device)
    with torch.set_grad_enabled(grad):
        logits = policy.score(batch).logits  # (R, T, V)
        token_logprobs = selective_log_softmax(logits, batch.actions)  # (R, T)
        mask = batch.completion_mask.float()  # (R, T)
        means = (token_logprobs * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # (R,)
    out = torch.full(valid.shape, -torch.inf, device=policy.device)
    index = torch.as_tensor(rows, device=policy.device)
    out = out.index_put((index[:, 0], index[:, 1]), means / config.temperature)
    return out


class EditReinforce:
    """REINFORCE on the candidate-scoring LM policy (see the module docstring).

    Args:
        policy: the trainable LM (``LMPolicy(..., value_head=False)``; LoRA works too).
        config: the settings.
    """

    def __init__(self, policy: LMPolicy, config: EditReinforceConfig | None = None) -> None:
        self.policy = policy
        self.config = config or EditReinforceConfig()
        self.optimizer = torch.optim.Adam(policy.trainable_parameters(), lr=self.config.learning_rate)
        self.generator = torch.Generator().manual_seed(self.config.seed)

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        """(N,) actions for a batch of observations: sampled, or the most likely candidate."""
        logits = candidate_logits(self.policy, obs, self.config).cpu()
        if deterministic:
            return logits.argmax(dim=1).numpy()
        return torch.multinomial(torch.softmax(logits, dim=1), 1, generator=self.generator)[:, 0].numpy()

    def collect(self, env: Any, seed: int | None = None) -> tuple[list[dict[str, np.ndarray]], list[int], list[float]]:
        """One episode per slot of the vector env `env`: per step its observation, action and return-to-go."""
        obs, _ = env.reset(seed=seed)
        finished = np.zeros(env.num_envs, dtype=bool)
        steps: list[tuple[int, dict[str, np.ndarray], int]] = []
        rewards: list[list[float]] = [[] for _ in range(env.num_envs)]
        while not finished.all():
            actions = self.act(obs)
            actions[finished] = 0  # ignored: those slots are done (their next step resets them)
            for n in np.flatnonzero(~finished).tolist():
                steps.append((int(n), {key: value[n] for key, value in obs.items()}, int(actions[n])))
            obs, reward, terminated, truncated, _ = env.step(actions)
            for n in np.flatnonzero(~finished).tolist():
                rewards[n].append(float(reward[n]))
            finished |= terminated | truncated
        to_go = [np.cumsum(r[::-1])[::-1].tolist() for r in rewards]
        position = [0] * env.num_envs
        observations, actions_taken, returns = [], [], []
        for n, observation, action in steps:
            observations.append(observation)
            actions_taken.append(action)
            returns.append(to_go[n][position[n]])
            position[n] += 1
        return observations, actions_taken, returns

    def update(self, observations: list[dict[str, np.ndarray]], actions: list[int], returns: list[float]) -> float:
        """One policy-gradient step; returns the loss."""
        batch = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
        advantages = torch.as_tensor(returns, dtype=torch.float32, device=self.policy.device)
        advantages = advantages - advantages.mean()  # the batch-mean return as baseline
        if len(returns) > 1 and advantages.std() > 0:
            advantages = advantages / advantages.std()
        logits = candidate_logits(self.policy, batch, self.config, grad=True)  # (B, K+1)
        chosen = torch.log_softmax(logits, dim=1)[torch.arange(len(actions)), torch.as_tensor(actions)]  # (B,)
        loss = -(advantages * chosen).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(loss.item())

    def learn(self, env: Any, iterations: int, seed: int = 0) -> list[float]:
        """`iterations` rounds of collect (one episode per slot) and update; returns each round's mean return."""
        mean_returns = []
        for iteration in range(iterations):
            observations, actions, returns = self.collect(env, seed=seed + iteration * env.num_envs)
            first = [r for o, r in zip(observations, returns) if int(o["edits_left"]) == env.config.max_edits]
            mean_returns.append(float(np.mean(first)))
            self.update(observations, actions, returns)
        return mean_returns


@dataclass(frozen=True)
class EditPPOConfig(EditReinforceConfig):
    """Settings of `EditPPO`: those of `EditReinforceConfig` plus PPO's clipped, multi-epoch update."""

    epochs: int = 4
    """Passes over each iteration's steps."""
    minibatch_size: int = 16
    """Steps per gradient step."""
    clip_range: float = 0.2
    """Clip of the probability ratio pi_new / pi_old of the chosen candidate."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("epochs", "minibatch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Expected {name} to be an int >= 1, got {value!r}")
        if isinstance(self.clip_range, bool) or not isinstance(self.clip_range, (int, float)) or self.clip_range <= 0:
            raise ValueError(f"Expected clip_range to be a number > 0, got {self.clip_range!r}")


class EditPPO(EditReinforce):
    """PPO on the candidate-scoring LM policy: the clipped surrogate of the chosen candidate's probability ratio,
    several epochs of shuffled minibatches per iteration, whitened returns-to-go as advantages (no critic: the
    batch mean is the baseline, as in `EditReinforce`)."""

    config: EditPPOConfig  # __init__ passes an EditPPOConfig

    def __init__(self, policy: LMPolicy, config: EditPPOConfig | None = None) -> None:
        super().__init__(policy, config or EditPPOConfig())
        self.np_random = np.random.default_rng(self.config.seed)

    def update(self, observations: list[dict[str, np.ndarray]], actions: list[int], returns: list[float]) -> float:
        """`epochs` passes of clipped policy-gradient steps; returns the last minibatch's loss."""
        config = self.config
        batch = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
        chosen_actions = torch.as_tensor(actions)
        advantages = torch.as_tensor(returns, dtype=torch.float32, device=self.policy.device)
        advantages = advantages - advantages.mean()
        if len(returns) > 1 and advantages.std() > 0:
            advantages = advantages / advantages.std()
        rows = torch.arange(len(actions))
        with torch.no_grad():
            old = torch.log_softmax(candidate_logits(self.policy, batch, config), dim=1)[rows, chosen_actions]
        loss_value = 0.0
        for _ in range(config.epochs):
            order = self.np_random.permutation(len(actions))
            for start in range(0, len(order), config.minibatch_size):
                index = order[start : start + config.minibatch_size]
                part = {key: value[index] for key, value in batch.items()}
                logits = candidate_logits(self.policy, part, config, grad=True)
                taken = torch.as_tensor(index)
                new = torch.log_softmax(logits, dim=1)[torch.arange(len(index)), chosen_actions[taken]]
                ratio = torch.exp(new - old[taken].to(new.device))
                gain = advantages[taken]
                clipped = torch.clamp(ratio, 1 - config.clip_range, 1 + config.clip_range)
                loss = -torch.minimum(ratio * gain, clipped * gain).mean()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                loss_value = float(loss.item())
        return loss_value
