"""`GenerationLoggingCallback`: sample generations and reward components of each SB3 rollout, to SB3's logger.

Records go through ``self.logger.record``, so whichever outputs the model's logger has get them: TensorBoard
(``tensorboard_log=...``; the samples appear under TEXT), JSON, CSV (scalars only) or stdout (scalars only).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["GenerationLoggingCallback"]

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
