"""Reward-hacking monitors: signs during training that the policy games its reward, each a warning, never a stop.

`HackingMonitor.observe(agent, stats)` reads the iteration's rollout (``agent.last_rollout``) and stats after each
update, adds its measurements to the stats (``monitor/...`` keys: the training log, TensorBoard) and returns a
`MonitorWarning` for every monitor that crosses its threshold (`MonitorConfig`): once when it crosses, again only
after it has come back under. It also issues each as a `RewardHackingWarning` and keeps them all (`warnings`,
`report`) for ``report.json``. Training always goes on: a warning is a reason to look at the samples.

Monitors (the defaults suit the main job; all are documented per field in `MonitorConfig`):

* ``length_drift``: mean completion length relative to its first iterations, ``|now / baseline - 1|``;
* ``repeated_ngrams``: mean share of a completion's word n-grams that repeat an earlier one in it (loops);
* ``identical_groups``: share of GRPO groups whose completions are all the same text (a collapsed group has no
  advantage signal left, and usually one answer that games the reward);
* ``kl_spike``: the iteration's KL to the reference over the median of the previous iterations' KL;
* ``reward_divergence``: training reward gain minus held-out reward gain (``eval/reward_mean``, when the run
  evaluates during training), counted only while the training reward rises and the held-out one falls.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from agents.rollout import RolloutBatch
from textgen_env.validation import check_positive

__all__ = ["HackingMonitor", "MonitorConfig", "MonitorWarning", "RewardHackingWarning", "repeated_ngram_share"]


class RewardHackingWarning(UserWarning):
    """A monitor crossed its threshold: the policy may be gaming its reward."""


@dataclass(frozen=True)
class MonitorConfig:
    """Thresholds of the reward-hacking monitors."""

    baseline_iterations: int = 3
    """Iterations averaged as the baseline of the drift monitors (length, rewards); none fires before them."""
    length_drift: float = 0.5
    """Warn when the mean completion length (tokens) moves more than this fraction from its baseline."""
    ngram: int = 3
    """n of the repeated n-gram monitor (words)."""
    repeated_ngrams: float = 0.25
    """Warn when the mean share of repeated word n-grams within a completion exceeds this."""
    identical_groups: float = 0.5
    """Warn when more than this share of GRPO groups have all-identical completions."""
    kl_spike: float = 3.0
    """Warn when the KL per completion exceeds this multiple of the median of the previous iterations' KL..."""
    kl_spike_min: float = 1.0
    """...and exceeds that median by more than this many nats (a KL that grows steadily from 0 early in a run
    passes any multiple of a lagging median without meaning anything)."""
    reward_divergence: float = 0.2
    """Warn when (training reward gain - held-out reward gain) since the baseline exceeds this, in reward units,
    with the training reward up and the held-out reward down."""

    def __post_init__(self) -> None:
        check_positive("baseline_iterations", self.baseline_iterations, integer=True)
        check_positive("ngram", self.ngram, integer=True)
        for name in ("length_drift", "repeated_ngrams", "identical_groups", "kl_spike", "kl_spike_min"):
            check_positive(name, getattr(self, name))
        check_positive("reward_divergence", self.reward_divergence)


@dataclass(frozen=True)
class MonitorWarning:
    """One threshold crossing."""

    monitor: str
    iteration: int
    value: float
    threshold: float
    message: str


def repeated_ngram_share(text: str, n: int) -> float:
    """Share of the word n-grams of `text` that repeat an earlier one (0 for a text shorter than n words)."""
    words = text.lower().split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return (len(grams) - len(set(grams))) / len(grams) if grams else 0.0


def _identical_group_share(rollout: RolloutBatch) -> float | None:
    if rollout.group_ids is None:
        return None
    groups: dict[int, list[str]] = {}
    for group, text in zip(rollout.group_ids.tolist(), rollout.completions):
        groups.setdefault(group, []).append(text)
    sized = [texts for texts in groups.values() if len(texts) > 1]
    return sum(len(set(texts)) == 1 for texts in sized) / len(sized) if sized else None


_MESSAGES = {
    "length_drift": "mean completion length moved {value:.0%} from its baseline (threshold {threshold:.0%})",
    "repeated_ngrams": "{value:.0%} of the completions' word n-grams repeat within them (threshold {threshold:.0%})",
    "identical_groups": "{value:.0%} of GRPO groups have all-identical completions (threshold {threshold:.0%})",
    "kl_spike": "KL to the reference jumped to {value:.1f}x its recent median (threshold {threshold:.1f}x)",
    "reward_divergence": "training reward rose while held-out reward fell: gap {value:.3f} (threshold {threshold:.3f})",
}


class HackingMonitor:
    """Watches a training run for reward hacking; see the module docstring.

    Args:
        config: the thresholds (`MonitorConfig`); keyword overrides are applied on top.
        issue_warnings: also issue each crossing as a `RewardHackingWarning` (the training app writes them to its
            log instead).
    """

    def __init__(self, config: MonitorConfig | None = None, *, issue_warnings: bool = True, **overrides: Any) -> None:
        self.config = MonitorConfig(**{**asdict(config or MonitorConfig()), **overrides})
        self.issue_warnings = issue_warnings
        self.warnings: list[MonitorWarning] = []
        self._over: set[str] = set()
        self._lengths: list[float] = []
        self._train_rewards: list[float] = []
        self._eval_rewards: list[float] = []
        self._kls: list[float] = []
        self.latest: dict[str, float] = {}

    def measure(self, rollout: object | None, stats: dict[str, float]) -> dict[str, float]:
        """This iteration's monitor values (``monitor/<name>``), from the rollout and the agent's stats.

        The text monitors (length drift, repeated n-grams, identical groups) read a token rollout (`RolloutBatch`);
        other rollouts (the edit agents' `EditRollout`) get the KL and reward monitors only.
        """
        config = self.config
        values: dict[str, float] = {}
        if isinstance(rollout, RolloutBatch) and len(rollout):
            length = float(rollout.completion_lengths.double().mean())
            self._lengths.append(length)
            if len(self._lengths) > config.baseline_iterations:
                baseline = float(np.mean(self._lengths[: config.baseline_iterations]))
                values["length_drift"] = abs(length / baseline - 1.0) if baseline > 0 else 0.0
            values["repeated_ngrams"] = float(
                np.mean([repeated_ngram_share(text, config.ngram) for text in rollout.completions])
            )
            identical = _identical_group_share(rollout)
            if identical is not None:
                values["identical_groups"] = identical
        kl = stats.get("rollout/kl")
        if kl is not None and math.isfinite(kl):
            if self._kls:
                median = float(np.median(self._kls[-10:]))
                if kl - median > config.kl_spike_min:
                    values["kl_spike"] = kl / median if median > 0 else math.inf
                else:
                    values["kl_spike"] = 0.0
            self._kls.append(kl)
        if "rollout/reward_mean" in stats:
            self._train_rewards.append(stats["rollout/reward_mean"])
        if "eval/reward_mean" in stats:
            self._eval_rewards.append(stats["eval/reward_mean"])
            window = config.baseline_iterations
            if len(self._train_rewards) > window and len(self._eval_rewards) > 1:
                train_gain = np.mean(self._train_rewards[-window:]) - np.mean(self._train_rewards[:window])
                eval_gain = self._eval_rewards[-1] - self._eval_rewards[0]
                divergent = train_gain > 0 and eval_gain < 0
                values["reward_divergence"] = float(train_gain - eval_gain) if divergent else 0.0
        return {f"monitor/{key}": value for key, value in values.items()}

    def observe(self, agent: Any, stats: dict[str, float]) -> list[MonitorWarning]:
        """Measure one iteration (`stats` gains the ``monitor/...`` keys) and return the new threshold crossings."""
        iteration = int(stats.get("iteration", getattr(agent, "iteration", 0)))
        measured = self.measure(getattr(agent, "last_rollout", None), stats)
        stats.update(measured)
        self.latest.update(measured)
        fired = []
        for key, value in measured.items():
            name = key.removeprefix("monitor/")
            threshold = float(getattr(self.config, name))
            if value > threshold and name not in self._over:
                message = f"iteration {iteration}: possible reward hacking: " + _MESSAGES[name].format(
                    value=value, threshold=threshold
                )
                fired.append(MonitorWarning(name, iteration, value, threshold, message))
                self._over.add(name)
            elif value <= threshold:
                self._over.discard(name)
        for warning in fired if self.issue_warnings else []:
            warnings.warn(warning.message, RewardHackingWarning, stacklevel=2)
        self.warnings.extend(fired)
        return fired

    def report(self) -> dict[str, Any]:
        """For ``report.json``: the thresholds, every warning and the last value of each monitor."""
        return {
            "thresholds": asdict(self.config),
            "warnings": [asdict(w) for w in self.warnings],
            "last_values": dict(self.latest),
        }
