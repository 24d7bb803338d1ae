"""`GenerationLoggingCallback`: sample generations and reward components of each SB3 rollout, to SB3's logger.

Records go through ``self.logger.record``, so whichever outputs the model's logger has get them: TensorBoard
(``tensorboard_log=...``; the samples appear under TEXT), JSON, CSV (scalars only) or stdout (scalars only).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from agents.functional import AdaptiveKLController

__all__ = ["AdaptiveKLCallback", "GenerationLoggingCallback"]

_TEXT_EXCLUDE = ("stdout", "log", "csv")  # multi-line text breaks the console table and SB3's CSV rewriting


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


class AdaptiveKLCallback(BaseCallback):
    """Adapt the env's ``kl_coef`` toward a target KL per episode (Ziegler et al. 2019), and SB3's ``ent_coef`` with it.

    The KL of each finished episode is estimated from the rollout as the sum over its steps of Schulman's
    non-negative, unbiased estimator ``exp(d) - d - 1`` with ``d = log pi_ref(a_t|s_t) - log pi(a_t|s_t)``: the
    policy's log-prob from SB3's collection loop and the reference's from ``info["reference_logprob"]``. After each
    rollout the mean episode KL updates an `AdaptiveKLController`; the new coefficient goes to every env
    (``set_kl_coef``) and to the algorithm's ``ent_coef``, so that the pair keeps meaning "reward minus coefficient
    times KL" (see the README's KL section).

    Args:
        target: the KL per episode to steer toward, in nats (> 0).
        horizon: the controller's horizon in episodes.
        verbose: SB3 verbosity.
    """

    def __init__(self, target: float, horizon: int = 10_000, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.target = target
        self.horizon = horizon
        self.controller: AdaptiveKLController | None = None
        self._running: np.ndarray = np.zeros(0)
        self._episode_kls: list[float] = []

    def _on_training_start(self) -> None:
        configs = self.training_env.get_attr("config")
        if not all(config.kl_coef > 0 for config in configs):
            raise ValueError(
                "Expected envs built with kl_coef > 0 for AdaptiveKLCallback, got "
                f"kl_coef={[config.kl_coef for config in configs]}"
            )
        self.controller = AdaptiveKLController(float(configs[0].kl_coef), self.target, self.horizon)
        self._running = np.zeros(len(configs))
        self._apply(self.controller.value)

    def _on_rollout_start(self) -> None:
        self._episode_kls = []

    def _on_step(self) -> bool:
        log_probs = self.locals["log_probs"].detach().cpu().numpy().reshape(-1)
        for i, (info, done) in enumerate(zip(self.locals["infos"], self.locals["dones"])):
            log_ratio = info["reference_logprob"] - log_probs[i]
            self._running[i] += np.expm1(log_ratio) - log_ratio  # k3 = exp(d) - d - 1 >= 0
            if done:
                self._episode_kls.append(float(self._running[i]))
                self._running[i] = 0.0
        return True

    def _on_rollout_end(self) -> None:
        if not self._episode_kls or self.controller is None:
            return
        episode_kl = float(np.mean(self._episode_kls))
        self.controller.update(episode_kl, len(self._episode_kls))
        self._apply(self.controller.value)
        self.logger.record("textgen/kl_episode", episode_kl)
        self.logger.record("textgen/kl_coef", self.controller.value)

    def _apply(self, value: float) -> None:
        self.training_env.env_method("set_kl_coef", value)
        self.model.ent_coef = value
