"""SB3 callbacks: `GenerationLoggingCallback` (generations and reward components of each rollout, to SB3's logger)
and `KLPenaltyCallback` (a KL penalty to the env's frozen model, applied to the rollout buffer before each update).

Records go through ``self.logger.record``, so whichever outputs the model's logger has get them: TensorBoard
(``tensorboard_log=...``; the samples appear under TEXT), JSON, CSV (scalars only) or stdout (scalars only).
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from agents.kl_control import AdaptiveKLController, FixedKLController

__all__ = ["GenerationLoggingCallback", "KLPenaltyCallback"]

_TEXT_EXCLUDE = ("stdout", "log", "csv")  # multi-line text breaks the console table and SB3's CSV rewriting
ROUNDING_NATS = 1e-5
"""Per-token log-ratios below this are float32 rounding between two forward paths, not a change of policy."""


class GenerationLoggingCallback(BaseCallback):
    """Log, at the end of every rollout, each reward component and a few finished generations.

    Keys (``prefix`` = ``"textgen"`` by default):

    * ``textgen/reward_<name>``: mean over the episodes that ended in the rollout of the episode's total of
      component ``<name>`` (from ``info["reward_components"]``: the reward's parts and ``kl`` when the env adds it);
    * ``textgen/reward_<name>_per_step``: the component's mean per env step over the rollout;
    * ``textgen/episodes``: episodes that ended in the rollout;
    * ``textgen/samples``: the last `n_samples` finished (prompt, completion, return) as Markdown text (TensorBoard
      and JSON outputs only).

    Args:
        n_samples: finished generations to keep per rollout (0 logs none).
        prefix: namespace of the keys.
        verbose: SB3 verbosity; 1 also prints the samples.
    """

    def __init__(self, n_samples: int = 4, prefix: str = "textgen", verbose: int = 0) -> None:
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 0:
            raise ValueError(f"Expected n_samples to be an int >= 0, got {n_samples!r}")
        super().__init__(verbose)
        self.n_samples = n_samples
        self.prefix = prefix
        self._running: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))  # env -> totals
        self._reset_rollout()

    def _reset_rollout(self) -> None:
        self._step_sums: dict[str, float] = defaultdict(float)
        self._steps = 0
        self._episode_totals: dict[str, list[float]] = defaultdict(list)
        self._episodes = 0
        self._samples: list[tuple[str, str, float]] = []

    def _on_rollout_start(self) -> None:
        self._reset_rollout()

    def _on_step(self) -> bool:
        infos: list[dict[str, Any]] = self.locals.get("infos", [])
        dones = self.locals.get("dones", np.zeros(len(infos), dtype=bool))
        for env_index, (info, done) in enumerate(zip(infos, dones)):
            components = info.get("reward_components", {})
            self._steps += 1
            for name, value in components.items():
                self._step_sums[name] += value
                self._running[env_index][name] += value
            if done:
                self._episodes += 1
                for name, total in self._running.pop(env_index, {}).items():
                    self._episode_totals[name].append(total)
                if self.n_samples:
                    sample = (info.get("prompt", ""), info.get("text", ""), float(info.get("episode_return", np.nan)))
                    self._samples = [*self._samples, sample][-self.n_samples :]
        return True

    def _on_rollout_end(self) -> None:
        self.logger.record(f"{self.prefix}/episodes", self._episodes)
        for name, totals in self._episode_totals.items():
            self.logger.record(f"{self.prefix}/reward_{name}", float(np.mean(totals)))
        for name, total in self._step_sums.items():
            self.logger.record(f"{self.prefix}/reward_{name}_per_step", total / max(self._steps, 1))
        if self._samples:
            text = "\n\n".join(
                f"**prompt:** {prompt}  \n**completion:** {completion}  \n**return:** {ret:+.4f}"
                for prompt, completion, ret in self._samples
            )
            self.logger.record(f"{self.prefix}/samples", text, exclude=_TEXT_EXCLUDE)
            if self.verbose:
                print(text.replace("**", ""))


class KLPenaltyCallback(BaseCallback):
    """A KL penalty to the env's frozen model for stock SB3 PPO/A2C: they then optimise task reward - beta * KL.

    At every step the callback records ``log ref(a_t|s_t)`` from ``info["reference_logprob"]`` (envs built with
    ``reference_logprobs=True`` and ``kl_coef=0``). When the rollout is complete, before the update, it subtracts
    ``beta * (log pi(a_t|s_t) - log ref(a_t|s_t))`` from the rollout buffer's rewards, ``log pi`` being the
    log-prob SB3 stored for the action it sampled, and recomputes the buffer's returns and advantages. This is the
    sampled (k1) per-token penalty of Ziegler et al. 2019 and TRL: its policy gradient is that of
    ``-beta * KL(pi || ref)`` over whole completions, and SB3's advantage normalisation scales the penalty and the
    task reward alike. Use it with ``ent_coef=0`` (an entropy bonus would add a term the objective does not have).

    With `target`, beta adapts toward that KL per episode (an `AdaptiveKLController`, Ziegler et al.'s rule); the
    KL of each finished episode is estimated by summing Schulman's non-negative estimator ``exp(d) - d - 1``,
    ``d = log ref(a_t|s_t) - log pi(a_t|s_t)``, over its steps.

    Args:
        kl_coef: beta, the penalty's coefficient (>= 0), or its starting value with `target`.
        target: None keeps beta fixed; a KL per episode in nats (> 0) to steer toward.
        horizon: the adaptive controller's horizon, in episodes.
        min_kl_coef: floor of the adaptive coefficient.
        verbose: SB3 verbosity.
    """

    model: OnPolicyAlgorithm  # _on_training_start refuses any other algorithm

    def __init__(
        self,
        kl_coef: float = 0.05,
        target: float | None = None,
        horizon: int = 10_000,
        min_kl_coef: float = 0.0,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        self.controller: AdaptiveKLController | FixedKLController = (
            FixedKLController(kl_coef)
            if target is None
            else AdaptiveKLController(kl_coef, target, horizon, min_kl_coef)
        )
        self._reference_logprobs = np.zeros((0, 0))
        self._running = np.zeros(0)
        self._episode_kls: list[float] = []

    @property
    def kl_coef(self) -> float:
        """The coefficient the next rollout will be penalised with."""
        return self.controller.value

    def _on_training_start(self) -> None:
        if not isinstance(self.model, OnPolicyAlgorithm):
            raise TypeError(f"Expected an on-policy SB3 algorithm (PPO, A2C), got {type(self.model).__name__}")
        configs = self.training_env.get_attr("config")
        if not all(config.reference_logprobs and config.kl_coef == 0 for config in configs):
            got = [(config.reference_logprobs, config.kl_coef) for config in configs]
            raise ValueError(
                "Expected envs built with reference_logprobs=True and kl_coef=0 for KLPenaltyCallback (the callback "
                f"applies the penalty; kl_coef would add a second term), got (reference_logprobs, kl_coef) = {got}"
            )
        if self.model.ent_coef != 0:
            warnings.warn(
                f"KLPenaltyCallback with ent_coef={self.model.ent_coef}: the entropy bonus is added on top of the KL "
                "penalty, so the objective is no longer task reward - beta * KL; use ent_coef=0",
                stacklevel=2,
            )
        buffer = self.model.rollout_buffer
        self._reference_logprobs = np.zeros((buffer.buffer_size, buffer.n_envs), dtype=np.float32)
        self._running = np.zeros(buffer.n_envs)

    def _on_rollout_start(self) -> None:
        self._episode_kls = []

    def _on_step(self) -> bool:
        position = self.model.rollout_buffer.pos  # where SB3 is about to store this step
        log_probs = self.locals["log_probs"].detach().cpu().numpy().reshape(-1)
        for i, (info, done) in enumerate(zip(self.locals["infos"], self.locals["dones"])):
            reference = float(info["reference_logprob"])
            self._reference_logprobs[position, i] = reference
            log_ratio = reference - log_probs[i]
            self._running[i] += np.expm1(log_ratio) - log_ratio  # k3 = exp(d) - d - 1 >= 0
            if done:
                self._episode_kls.append(float(self._running[i]))
                self._running[i] = 0.0
        return True

    def _on_rollout_end(self) -> None:
        buffer = self.model.rollout_buffer
        beta = self.controller.value
        log_ratio = buffer.log_probs - self._reference_logprobs  # (n_steps, n_envs), sampled k1
        # the policy's and the env's float32 forwards differ by ~1e-6 nats for identical weights; SB3 would whiten
        # that rounding noise into unit-size advantages, so differences below ROUNDING_NATS count as 0
        log_ratio = np.where(np.abs(log_ratio) < ROUNDING_NATS, 0.0, log_ratio)
        penalty = beta * log_ratio
        buffer.rewards -= penalty
        buffer.compute_returns_and_advantage(last_values=self.locals["values"], dones=self.locals["dones"])
        self.logger.record("textgen/kl_coef", beta)
        self.logger.record("textgen/kl_penalty_per_step", float(penalty.mean()))
        if self._episode_kls:
            episode_kl = float(np.mean(self._episode_kls))
            self.controller.update(episode_kl, len(self._episode_kls))
            self.logger.record("textgen/kl_episode", episode_kl)
