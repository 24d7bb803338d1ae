"""Typed, validated configs of the agents: one frozen dataclass per algorithm, a docstring per field."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from textgen_env.validation import check_positive as _positive
from textgen_env.validation import check_unit as _unit

__all__ = ["AgentConfig", "DQNConfig", "GRPOConfig", "PPOConfig", "REINFORCEConfig"]


@dataclass(frozen=True)
class AgentConfig:
    """Settings shared by every agent."""

    learning_rate: float = 1e-5
    """AdamW learning rate (> 0)."""
    episodes_per_iteration: int = 16
    """Episodes collected before each update; a multiple of the env's num_envs (rounded up)."""
    minibatch_size: int = 8
    """Episodes per gradient step (<= episodes_per_iteration)."""
    epochs: int = 1
    """Passes over each iteration's episodes."""
    gamma: float = 1.0
    """Discount per token."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip."""
    kl_coef: float = 0.05
    """Initial coefficient of the per-token KL penalty to the reference model (0 disables it)."""
    kl_target: float | None = None
    """None keeps kl_coef fixed; a number adapts it toward this KL per episode (nats), as in Ziegler et al. 2019."""
    kl_horizon: int = 10_000
    """Horizon (in episodes) of the adaptive KL controller."""
    kl_coef_min: float = 0.0
    """Floor of the adaptive KL coefficient (it otherwise shrinks while the policy is still near the reference)."""
    value_learning_rate: float | None = None
    """AdamW learning rate of the value head, when the agent has one (None: learning_rate). A linear head on the
    trunk learns little at an LM's fine-tuning rate, and a baseline that stays near 0 leaves the advantages noisy."""
    temperature: float = 1.0
    """Sampling temperature during rollouts (> 0); the updates score the policy and the reference at it too."""
    lora_rank: int = 0
    """> 0 trains LoRA adapters of this rank instead of all weights (the reference is then free)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    bf16_autocast: bool = False
    """Run rollouts and updates under torch.autocast in bfloat16 (weights, AdamW state and evaluation stay float32):
    about 1.5x faster on CPUs with AVX512-BF16 or AMX and on recent GPUs, slower on CPUs without bfloat16 units."""
    seed: int = 0
    """Seeds sampling, minibatch order and the env resets."""

    def __post_init__(self) -> None:
        _positive("learning_rate", self.learning_rate)
        _positive("episodes_per_iteration", self.episodes_per_iteration, integer=True)
        _positive("minibatch_size", self.minibatch_size, integer=True)
        _positive("epochs", self.epochs, integer=True)
        _unit("gamma", self.gamma)
        _positive("max_grad_norm", self.max_grad_norm)
        _positive("kl_coef", self.kl_coef, allow_zero=True)
        if self.kl_target is not None:
            _positive("kl_target", self.kl_target)
        _positive("kl_horizon", self.kl_horizon, integer=True)
        _positive("kl_coef_min", self.kl_coef_min, allow_zero=True)
        _positive("temperature", self.temperature)
        if self.value_learning_rate is not None:
            _positive("value_learning_rate", self.value_learning_rate)
        _positive("lora_rank", self.lora_rank, integer=True, allow_zero=True)
        _positive("weight_decay", self.weight_decay, allow_zero=True)
        if not isinstance(self.bf16_autocast, bool):
            raise ValueError(f"Expected bf16_autocast to be a bool, got {self.bf16_autocast!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise ValueError(f"Expected seed to be an int, got {self.seed!r}")
        if self.minibatch_size > self.episodes_per_iteration:
            raise ValueError(
                f"Expected minibatch_size <= episodes_per_iteration ({self.episodes_per_iteration}), "
                f"got {self.minibatch_size}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, strict: bool = True) -> AgentConfig:
        """The config of `values` (field name -> value).

        Raises:
            TypeError: with `strict`, for a name that is not an option of this config (naming the valid ones).
                ``strict=False`` drops such names instead (reading checkpoints written by other versions).
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown and strict:
            raise TypeError(
                f"Expected options of {cls.__name__} ({', '.join(sorted(known))}), got unknown option(s) "
                f"{', '.join(map(repr, unknown))}"
            )
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class PPOConfig(AgentConfig):
    """PPO with GAE, a clipped objective, a value head and a KL penalty in the reward (the sampled k1 term
    ``log pi - log ref`` of each chosen token; the exact per-token KL is what is logged and steered)."""

    learning_rate: float = 2e-5
    """AdamW learning rate (> 0)."""
    epochs: int = 2
    """Passes over each iteration's episodes."""
    lam: float = 0.95
    """GAE lambda."""
    clip_range: float = 0.2
    """Policy ratio clip."""
    clip_range_value: float | None = 0.2
    """Value clip around the old values (None: no clipping)."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    whiten_advantages: bool = True
    """Normalise advantages per iteration."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _unit("lam", self.lam)
        _positive("clip_range", self.clip_range)
        if self.clip_range_value is not None:
            _positive("clip_range_value", self.clip_range_value)
        _positive("vf_coef", self.vf_coef, allow_zero=True)
        _positive("ent_coef", self.ent_coef, allow_zero=True)


@dataclass(frozen=True)
class REINFORCEConfig(AgentConfig):
    """REINFORCE (the plain policy gradient) with a baseline."""

    baseline: Literal["running_mean", "value", "none"] = "running_mean"
    """'running_mean' of episode returns, a learned 'value' head on the trunk, or 'none'."""
    baseline_momentum: float = 0.9
    """Momentum of the running-mean baseline."""
    vf_coef: float = 0.5
    """Weight of the value loss when baseline='value'."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.baseline not in ("running_mean", "value", "none"):
            raise ValueError(f"Expected baseline to be one of ['running_mean', 'value', 'none'], got {self.baseline!r}")
        _unit("baseline_momentum", self.baseline_momentum)


KL_ESTIMATORS = ("exact", "k3")
"""The values of `GRPOConfig.kl_estimator`."""


@dataclass(frozen=True)
class GRPOConfig(AgentConfig):
    """GRPO: group-relative advantages over several completions of one prompt, no critic, KL in the loss."""

    group_size: int = 4
    """Completions per prompt (the env's num_envs must be a multiple of it); on TextDialogue-v0, conversations per
    scenario, whose replies at one turn form a group."""
    clip_range: float = 0.2
    """Policy ratio clip."""
    scale_rewards: bool = True
    """Divide by the group's reward standard deviation."""
    kl_score_term: bool = True
    """Add the score-function part of grad KL(whole completion) to the advantages (``-kl_coef`` x the exact KL still
    to come after each token, under the rollout policy), so that the update follows grad(E[advantage-weighted
    reward] - kl_coef * KL(pi || ref) of whole completions); False keeps only the per-state term (GRPO as published,
    which misses the cost of steering into high-KL states: 9-20 % of the gradient on 6-token completions)."""
    max_resample_rounds: int = 0
    """Zero-variance filtering (dynamic sampling, as in DAPO): drop the groups whose returns are all equal (their
    advantage is 0, so they would teach nothing but the KL term) and collect up to this many extra rounds of num_envs
    episodes to replace them; when these run out, dropped groups fill the rest. 0 keeps every group (GRPO as
    published). In training only (`collect_for_update`; `collect`, which measurements use, keeps every group).
    TextGen-v0 only, without group rewards; the dropped episodes' tokens count toward the budget, and
    ``rollout/zero_variance_groups`` (fraction), ``rollout/dropped_groups`` and ``rollout/zero_variance_kept``
    are logged."""
    kl_score_baseline: bool = True
    """Subtract from each token's KL still to come the mean of the other group members' at the same position
    (`agents.functional.leave_one_out_baseline`): the same expected gradient, far less variance (the KL to come is
    all positive and grows with the drift, so without a baseline it pushes down every sampled token)."""

    kl_estimator: str = "exact"
    """The KL term of the loss: ``exact`` (the full-vocabulary KL(pi || ref) at each visited state, with its
    gradient) or ``k3`` (``exp(r) - r - 1`` with ``r = log ref(a) - log pi(a)`` of the sampled token only, as TRL's
    GRPOTrainer: an unbiased estimate of the per-state KL whose expected gradient is that of KL(ref || pi)). The KL
    that the controller reads, that the score term uses and ``rollout/kl`` are the exact one either way; the loss's
    term is logged as ``losses/kl_per_token`` (exact) or ``losses/kl_k3_per_token``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kl_estimator not in KL_ESTIMATORS:
            raise ValueError(f"Expected kl_estimator to be one of {KL_ESTIMATORS}, got {self.kl_estimator!r}")
        _positive("group_size", self.group_size, integer=True)
        if self.group_size < 2:
            raise ValueError(f"Expected group_size >= 2 (a group needs a peer), got {self.group_size}")
        _positive("clip_range", self.clip_range)
        if not isinstance(self.kl_score_term, bool):
            raise ValueError(f"Expected kl_score_term to be a bool, got {self.kl_score_term!r}")
        _positive("max_resample_rounds", self.max_resample_rounds, integer=True, allow_zero=True)
        if not isinstance(self.kl_score_baseline, bool):
            raise ValueError(f"Expected kl_score_baseline to be a bool, got {self.kl_score_baseline!r}")


@dataclass(frozen=True)
class DQNConfig(AgentConfig):
    """Token-level double DQN whose Q-values start as the LM's logits, with a Polyak-averaged target network."""

    learning_rate: float = 1e-4
    """AdamW learning rate (> 0)."""
    buffer_episodes: int = 256
    """Replay buffer capacity, in episodes."""
    learning_starts: int = 16
    """Episodes collected before the first update."""
    gradient_steps: int = 2
    """Gradient steps per iteration."""
    tau: float = 0.05
    """Polyak factor of the target network update (1 copies)."""
    exploration_temperature: float = 1.0
    """Boltzmann temperature over Q during rollouts (Q starts as the logits, so 1 starts as LM sampling)."""
    epsilon: float = 0.05
    """Probability of a uniformly random token in rollouts."""
    double_q: bool = True
    """Pick the next action with the online network, value it with the target network."""
    kl_coef: float = 0.0
    """Must stay 0: DQN's Q-targets have no KL term (for one, build the env with ``kl_coef > 0``: its reward then
    carries ``kl_coef * log ref(a_t|s_t)``, and DQN's Boltzmann exploration is not an entropy bonus, so that is a
    likelihood bonus under the reference rather than a KL penalty)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kl_coef != 0 or self.kl_target is not None:
            raise ValueError(
                "Expected kl_coef=0 and kl_target=None for DQN (its update has no KL penalty; the env's kl_coef adds "
                f"log-likelihood under the reference to the reward), got kl_coef={self.kl_coef!r}, "
                f"kl_target={self.kl_target!r}"
            )
        _positive("buffer_episodes", self.buffer_episodes, integer=True)
        _positive("learning_starts", self.learning_starts, integer=True, allow_zero=True)
        _positive("gradient_steps", self.gradient_steps, integer=True)
        _unit("tau", self.tau)
        _positive("exploration_temperature", self.exploration_temperature)
        _unit("epsilon", self.epsilon)
