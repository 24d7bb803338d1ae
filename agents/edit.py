"""The LM as the policy of TextEdit-v0: it scores each candidate edit by log-probability; REINFORCE or PPO trains it.

The policy over the K + 1 actions of a 'candidates' observation is
``pi(i | s) = softmax_i(mean log p_LM(result_i | instruction + text + separator) / temperature)`` over the valid
candidates, where result_i is candidate i's text (row 0, STOP, is the text itself): the LM prefers the revision it
finds most likely as a continuation of "Improve this text". Training raises the log-probability of the edits that
paid, so it moves the LM itself toward better edits; the env stays untouched (any Gymnasium agent could edit the
same drafts).

Both agents are `Agent`s: ``learn(total_timesteps, callback)`` counts edit steps, ``save``/``load`` checkpoints
resume exactly, ``textgen-env train --env edit --agent reinforce|ppo`` runs them. One iteration collects
`episodes_per_iteration` episodes (whole rounds of the vector env, finished slots idle until every slot is done),
computes returns-to-go (discounted by ``gamma`` per edit), whitens them over the iteration (the batch mean is the
baseline; there is no critic) and takes gradient steps on minibatches of whole episodes with the shared clipped
surrogate (`agents.functional.clipped_policy_loss`) against the log-probabilities the rollout sampled with.
`EditReinforce` takes one epoch (with its default minibatch = the iteration, one step: the ratio is 1 and the
surrogate's gradient is the plain policy gradient); `EditPPO` several epochs of smaller minibatches.

    env = TextEditVectorEnv(num_envs=4, model=model, tokenizer=tokenizer, reward="sentiment")
    agent = EditReinforce(env, learning_rate=1e-3)
    agent.learn(total_timesteps=2_000)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import torch
from transformers import PreTrainedModel

from agents.base import Agent
from agents.config import AgentConfig
from agents.functional import clipped_policy_loss, selective_log_softmax
from agents.policy import LMPolicy
from agents.rollout import RolloutBatch
from textgen_env.validation import check_positive

__all__ = ["EditPPO", "EditPPOConfig", "EditReinforce", "EditReinforceConfig", "EditRollout", "candidate_logits"]


@dataclass(frozen=True)
class _EditConfig(AgentConfig):
    """Settings shared by the edit agents (`AgentConfig`'s, with budgets counted in edit steps)."""

    learning_rate: float = 1e-4
    """AdamW learning rate (> 0)."""
    episodes_per_iteration: int = 8
    """Edit episodes collected before each update; a multiple of the env's num_envs (rounded up)."""
    kl_coef: float = 0.0
    """Must stay 0: the edit agents have no KL term (their held-out evaluation reports the KL to the reference)."""
    gamma: float = 1.0
    """Discount per edit step of the returns-to-go."""
    temperature: float = 1.0
    """Divides the candidates' mean log-probs before the softmax over them (> 0)."""
    clip_range: float = 0.2
    """Clip of the probability ratio pi_new / pi_rollout of the chosen candidate."""
    instruction: str = "Improve this text: "
    """Text before the current text in each candidate's prompt."""
    separator: str = " Revised: "
    """Text between the current text and the candidate's result."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kl_coef != 0 or self.kl_target is not None:
            raise ValueError(
                f"Expected kl_coef=0 and kl_target=None for an edit agent (it has no KL term), got "
                f"kl_coef={self.kl_coef!r}, kl_target={self.kl_target!r}"
            )
        check_positive("clip_range", self.clip_range)
        if not isinstance(self.instruction, str) or not isinstance(self.separator, str):
            raise TypeError(
                f"Expected instruction and separator to be str, got {type(self.instruction).__name__} and "
                f"{type(self.separator).__name__}"
            )


@dataclass(frozen=True)
class EditReinforceConfig(_EditConfig):
    """Settings of `EditReinforce`: one pass over each iteration (whole-iteration minibatch by default)."""

    minibatch_size: int = 8
    """Episodes per gradient step (all their edit steps); equal to episodes_per_iteration, one step per iteration."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epochs != 1:
            raise ValueError(f"Expected epochs=1 for EditReinforce (several passes are EditPPO), got {self.epochs!r}")


@dataclass(frozen=True)
class EditPPOConfig(_EditConfig):
    """Settings of `EditPPO`: PPO's clipped, multi-epoch update over minibatches of episodes."""

    epochs: int = 4
    """Passes over each iteration's episodes."""
    minibatch_size: int = 4
    """Episodes per gradient step (all their edit steps)."""


@dataclass
class EditRollout:
    """One iteration of edit episodes, flattened to steps: what the update reads.

    Steps are grouped by episode (``episode`` gives each step's row in ``scores``), in collection order.
    """

    observations: dict[str, np.ndarray]
    """Each observation key -> (S, ...) the steps' observations."""
    actions: np.ndarray
    """(S,) the chosen candidate of each step."""
    logprobs: torch.Tensor
    """(S,) log pi(action | observation) under the policy that sampled it."""
    rewards: np.ndarray
    """(S,) the env's reward of each step."""
    returns: np.ndarray
    """(S,) discounted return-to-go of each step."""
    episode: np.ndarray
    """(S,) index of each step's episode."""
    scores: np.ndarray
    """(E,) each episode's undiscounted return (what the training log reports per episode)."""

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def num_tokens(self) -> int:
        """Timesteps of the rollout, the unit of the ``learn`` budget: edit steps."""
        return len(self.actions)


def _unpadded(ids: np.ndarray, mask: np.ndarray) -> list[int]:
    return ids[mask == 1].tolist()


def candidate_logits(
    policy: LMPolicy, obs: dict[str, np.ndarray], config: _EditConfig, *, grad: bool = False
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
    out = out.index_put((index[:, 0], index[:, 1]), means.float() / config.temperature)
    return out


class EditReinforce(Agent):
    """REINFORCE on the candidate-scoring LM policy (see the module docstring).

    Args:
        env: a ``TextEditVectorEnv`` (``gym.make_vec("TextEdit-v0", num_envs=N)``) in the 'candidates' action mode.
        config: the settings; keyword overrides are applied on top.
        model: the trainable LM (instance, name or path); defaults to a copy of the env's model.
    """

    config_class: ClassVar[type[AgentConfig]] = EditReinforceConfig
    uses_reference: ClassVar[bool] = False
    name: ClassVar[str] = "edit-reinforce"
    config: _EditConfig

    def __init__(
        self,
        env: Any,
        config: AgentConfig | None = None,
        *,
        model: PreTrainedModel | str | None = None,
        **overrides: Any,
    ) -> None:
        if isinstance(env, LMPolicy):
            raise TypeError(
                "Expected the env first, got an LMPolicy: since 0.2 an edit agent is an Agent, built as "
                "EditReinforce(env, config, model=...) (lora_rank= in the config for LoRA)"
            )
        distributed = overrides.get("distributed")
        if distributed is not None and distributed.world_size > 1:
            raise ValueError(
                f"Expected a single process for an edit agent (its episodes vary in length, so ranks would take "
                f"different numbers of steps), got world size {distributed.world_size}"
            )
        super().__init__(env, config, model=model, **overrides)

    @classmethod
    def coerce_env(cls, env: Any) -> Any:
        from textgen_env.edit import TextEditEnv, TextEditVectorEnv

        inner = getattr(env, "unwrapped", env)
        if isinstance(inner, TextEditEnv):
            raise TypeError("Expected gym.make_vec('TextEdit-v0', num_envs=N) for an edit agent, got a TextEditEnv")
        if not isinstance(inner, TextEditVectorEnv):
            raise TypeError(f"Expected a TextEditVectorEnv for an edit agent, got {type(env).__name__}")
        if inner.config.action_mode != "candidates":
            raise ValueError(
                f"Expected an env with action_mode='candidates' for an edit agent, got {inner.config.action_mode!r}"
            )
        return inner

    def check_model(self, model: PreTrainedModel) -> None:
        rows = cast(int, model.get_input_embeddings().num_embeddings)  # an nn.Embedding's row count
        if rows < len(self.env.tokenizer):
            raise ValueError(
                f"Expected a model with at least the env tokenizer's {len(self.env.tokenizer)} embedding rows, "
                f"got {rows}"
            )

    # ------------------------------------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        """(N,) actions for a batch of observations: sampled, or the most likely candidate."""
        return self._act(obs, deterministic)[0]

    def _act(self, obs: dict[str, np.ndarray], deterministic: bool) -> tuple[np.ndarray, torch.Tensor]:
        """Actions and their log-probabilities under the current policy."""
        logits = candidate_logits(self.policy, obs, self.config).cpu()  # (N, K+1)
        if deterministic:
            actions = logits.argmax(dim=1)
        else:
            actions = torch.multinomial(torch.softmax(logits, dim=1), 1, generator=self.generator)[:, 0]
        logprobs = torch.log_softmax(logits, dim=1).gather(1, actions[:, None])[:, 0]  # (N,)
        return actions.numpy(), logprobs

    def predict(self, observation: Any, deterministic: bool = False) -> tuple[np.ndarray, None]:
        """Actions for 'candidates' observations (SB3-style: returns ``(actions, None)``)."""
        single = np.asarray(observation["candidate_valid"]).ndim == 1
        batch = {key: np.asarray(value)[None] for key, value in observation.items()} if single else observation
        actions = self.act(batch, deterministic=deterministic)
        return (actions[0] if single else actions), None

    # ------------------------------------------------------------------------------------------------ rollouts
    def collect(  # type: ignore[override]  # an edit rollout holds edit steps, not tokens
        self, num_episodes: int | None = None, *, temperature: float | None = None
    ) -> EditRollout:
        """Whole rounds of one episode per slot until `num_episodes` (default: episodes_per_iteration) ended; a
        finished slot idles (``step_unfinished``) until the round's last episode ends, so nothing is thrown away."""
        if temperature is not None and temperature != self.config.temperature:
            raise ValueError("Expected the edit agent's own temperature (it is part of its policy), got another")
        num_episodes = num_episodes or self.episodes_per_rank
        parts: list[EditRollout] = []
        round_index = 0
        while sum(len(p) for p in parts) < num_episodes:
            parts.append(self._collect_edit_round(self.reset_seeds(round_index)))
            round_index += 1
        return _concat(parts)

    @torch.no_grad()
    def _collect_edit_round(self, seeds: list[int]) -> EditRollout:
        env: Any = self.env  # a TextEditVectorEnv (coerce_env)
        n = env.num_envs
        obs, _ = env.reset(seed=seeds)
        active = np.ones(n, dtype=bool)
        steps: list[tuple[int, dict[str, np.ndarray], int, float]] = []
        rewards: list[list[float]] = [[] for _ in range(n)]
        while active.any():
            actions, logprobs = self._act(obs, deterministic=False)
            actions[~active] = 0  # ignored: those slots idle until the round ends
            for i in np.flatnonzero(active).tolist():
                steps.append((i, {key: value[i] for key, value in obs.items()}, int(actions[i]), float(logprobs[i])))
            obs, reward, terminated, truncated, _ = env.step_unfinished(actions)
            for i in np.flatnonzero(active).tolist():
                rewards[i].append(float(reward[i]))
            active &= ~(terminated | truncated)
        gamma = self.config.gamma
        to_go: list[list[float]] = []
        for episode_rewards in rewards:
            running, values = 0.0, []
            for r in reversed(episode_rewards):
                running = r + gamma * running
                values.append(running)
            to_go.append(values[::-1])
        order = sorted(range(len(steps)), key=lambda k: steps[k][0])  # group by slot, keeping time order
        position = [0] * n
        step_returns, step_rewards = [], []
        for k in order:
            slot = steps[k][0]
            step_returns.append(to_go[slot][position[slot]])
            step_rewards.append(rewards[slot][position[slot]])
            position[slot] += 1
        chosen = [steps[k] for k in order]
        self.num_timesteps += len(chosen)
        return EditRollout(
            observations={key: np.stack([s[1][key] for s in chosen]) for key in chosen[0][1]},
            actions=np.asarray([s[2] for s in chosen], dtype=np.int64),
            logprobs=torch.tensor([s[3] for s in chosen], dtype=torch.float32),
            rewards=np.asarray(step_rewards),
            returns=np.asarray(step_returns),
            episode=np.asarray([s[0] for s in chosen], dtype=np.int64),
            scores=np.asarray([sum(r) for r in rewards]),
        )

    # ------------------------------------------------------------------------------------------------ learning
    def update(self, rollout: EditRollout) -> dict[str, float]:  # type: ignore[override]  # edit steps, not tokens
        """`epochs` passes of shuffled minibatches of whole episodes with the clipped surrogate loss."""
        device = self.policy.device
        advantages = torch.as_tensor(rollout.returns, dtype=torch.float32, device=device)
        advantages = advantages - advantages.mean()  # the iteration's mean return as baseline
        if len(advantages) > 1 and advantages.std() > 0:
            advantages = advantages / advantages.std()
        old = rollout.logprobs.to(device)
        stats: dict[str, list[float]] = {"losses/policy": [], "train/approx_kl": [], "train/clip_fraction": []}
        grad_norms = []
        for _ in range(self.config.epochs):
            for episodes in self.minibatches(len(rollout)):
                rows = np.flatnonzero(np.isin(rollout.episode, episodes))
                part = {key: value[rows] for key, value in rollout.observations.items()}
                logits = candidate_logits(self.policy, part, self.config, grad=True)  # (B, K+1)
                taken = torch.as_tensor(rollout.actions[rows], device=device)
                logp = torch.log_softmax(logits, dim=1).gather(1, taken[:, None])  # (B, 1)
                index = torch.as_tensor(rows, device=device)
                loss, parts = clipped_policy_loss(
                    logp, old[index][:, None], advantages[index][:, None], torch.ones_like(logp), self.config.clip_range
                )
                grad_norms.append(self.optimizer_step(loss, weight=len(rows)))
                stats["losses/policy"].append(float(loss.detach()))
                stats["train/approx_kl"].append(float(parts["approx_kl"]))
                stats["train/clip_fraction"].append(float(parts["clip_fraction"]))
        out = {key: float(np.mean(values)) for key, values in stats.items()}
        out["train/grad_norm"] = float(np.mean(grad_norms))
        return out


class EditPPO(EditReinforce):
    """PPO on the candidate-scoring LM policy: the clipped surrogate of the chosen candidate's probability ratio,
    several epochs of shuffled minibatches per iteration, whitened returns-to-go as advantages (no critic: the
    iteration's mean return is the baseline, as in `EditReinforce`)."""

    config_class: ClassVar[type[AgentConfig]] = EditPPOConfig
    name: ClassVar[str] = "edit-ppo"


def _concat(parts: list[EditRollout]) -> EditRollout:
    offsets = np.cumsum([0] + [len(p) for p in parts[:-1]])
    return EditRollout(
        observations={key: np.concatenate([p.observations[key] for p in parts]) for key in parts[0].observations},
        actions=np.concatenate([p.actions for p in parts]),
        logprobs=torch.cat([p.logprobs for p in parts]),
        rewards=np.concatenate([p.rewards for p in parts]),
        returns=np.concatenate([p.returns for p in parts]),
        episode=np.concatenate([p.episode + offset for p, offset in zip(parts, offsets)]),
        scores=np.concatenate([p.scores for p in parts]),
    )
