"""Rubric composition: `Sequential` (stages that fail fast below a threshold) and `Gate` (a reward that counts only
when another passes a threshold). Weighted sums are `WeightedReward` (the ``{reward: weight}`` dict form).

Every part keeps its own entries in ``info["reward_components"]``, and the entries always sum to the score (the
contract of `Reward.components`): a stage that was not reached, or a gated reward whose gate failed, reports 0.

>>> from textgen_env.rewards import KeywordReward, LengthReward
>>> rubric = Gate(KeywordReward(keywords=["great"]), when=LengthReward(target=3), threshold=0.0)
>>> rubric(["Review:"] * 2, ["a great film", "a great great film"], [True, True])  # the second is too long
array([1., 0.])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from textgen_env.rewards.base import Reward
from textgen_env.rewards.registry import RewardSpec, make_reward

__all__ = ["Gate", "Sequential", "Stage"]

Stage = Reward | RewardSpec | tuple[Any, float]
"""A stage of `Sequential`: a reward (or any spec `make_reward` takes), or ``(reward, threshold)``."""


def _finite(name: str, value: object) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"Expected {name} to be a finite number, got {value!r}")
    return float(value)


def _as_reward(spec: Any, kwargs: Mapping[str, Any] | None = None) -> Reward:
    return spec if isinstance(spec, Reward) else make_reward(spec, kwargs)


class Sequential(Reward):
    """Stages scored in order; a completion stops at the first stage whose score is below that stage's threshold.

    Score = sum over the stages a completion reached of ``weight * stage score``. A completion reaches stage j+1
    only when its stage-j score is >= stage j's threshold (a stage without a threshold never stops it), so an
    expensive later stage (a judge, a test run) is computed only for the completions that passed the cheap checks
    before it: each stage is called once per batch, on those completions alone. The failing stage still counts
    (a format score of 0.3 with a threshold of 1 pays ``weight * 0.3``); the stages after it pay 0.

    Args:
        stages: each a `Reward` (or a spec that `make_reward` accepts: a registered name, a callable, a dict
            mix) or a ``(reward, threshold)`` pair.
        weights: one finite weight per stage (default 1 each). A stage with weight 0 still gates but does not
            count, and reports no component.
        name: the rubric's name.

    Components: each counted stage's own components times its weight; 0 where a completion did not reach it.

    >>> from textgen_env.rewards import KeywordReward, RegexReward
    >>> rubric = Sequential((RegexReward(patterns=r"^\\d+$"), 1.0), KeywordReward(keywords=["7"]))
    >>> rubric(["2+5="] * 3, ["7", "seven", "8"], [True, True, True])
    array([2., 0., 1.])
    """

    name = "sequential"

    def __init__(self, *stages: Stage, weights: Sequence[float] | None = None, name: str = "sequential") -> None:
        if not stages:
            raise ValueError("Expected at least one stage, got none")
        self.stages: list[tuple[Reward, float | None]] = []
        for index, stage in enumerate(stages):
            if isinstance(stage, tuple):
                if len(stage) != 2:
                    raise ValueError(f"Expected stage {index} as (reward, threshold), got a tuple of {len(stage)}")
                reward, threshold = stage
                self.stages.append((_as_reward(reward), _finite(f"the threshold of stage {index}", threshold)))
            else:
                self.stages.append((_as_reward(stage), None))
        if weights is None:
            weights = [1.0] * len(self.stages)
        if isinstance(weights, (str, bytes)) or len(weights) != len(self.stages):
            raise ValueError(f"Expected one weight per stage ({len(self.stages)}), got {weights!r}")
        self.weights = [_finite(f"the weight of stage {i}", w) for i, w in enumerate(weights)]
        counted = [reward for (reward, _), weight in zip(self.stages, self.weights) if weight != 0]
        keys = [key for reward in counted for key in reward.component_names]
        if len(keys) != len(set(keys)):
            raise ValueError(f"Expected distinct component names across the stages, got {keys}")
        self.name = name
        self.needs_references = any(reward.needs_references for reward, _ in self.stages)

    @property
    def component_names(self) -> tuple[str, ...]:
        counted = [reward for (reward, _), weight in zip(self.stages, self.weights) if weight != 0]
        return tuple(key for reward in counted for key in reward.component_names)

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        return sum(self.components(prompts, completions, dones).values(), np.zeros(len(prompts)))

    def components(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        dones: Sequence[bool],
        references: Sequence[tuple[str, ...]] | None = None,
    ) -> dict[str, np.ndarray]:
        count = len(prompts)
        parts: dict[str, np.ndarray] = {key: np.zeros(count) for key in self.component_names}
        alive = np.arange(count)  # completions that passed every stage so far
        for (reward, threshold), weight in zip(self.stages, self.weights):
            if not len(alive):
                break
            rows = alive.tolist()
            scored = reward.components(
                [prompts[i] for i in rows],
                [completions[i] for i in rows],
                [bool(dones[i]) for i in rows],
                None if references is None else [references[i] for i in rows],
            )
            if weight != 0:
                for key, values in scored.items():
                    parts.setdefault(key, np.zeros(count))[alive] = weight * values
            if threshold is not None:
                total = sum(scored.values(), np.zeros(len(rows)))
                alive = alive[total >= threshold]
        return parts

    def __repr__(self) -> str:
        inner = ", ".join(
            f"({reward.name}, {threshold})" if threshold is not None else reward.name
            for reward, threshold in self.stages
        )
        return f"{type(self).__name__}({inner}, weights={self.weights})"


class Gate(Sequential):
    """`reward` counts only for completions whose `when` score is >= `threshold` (e.g. correctness only when the
    format holds); `when` is computed first and `reward` only for the completions that pass it.

    Score = ``gate_weight * when + (when >= threshold) * reward``: the same as
    ``Sequential((when, threshold), reward, weights=[gate_weight, 1])``.

    Args:
        reward: the gated reward (a `Reward` or any spec `make_reward` accepts; a registered name is built with
            `reward_kwargs`).
        when: the gate (a `Reward` or a spec; a registered name is built with `when_kwargs`).
        threshold: the gate passes where its score is >= this.
        gate_weight: how much the gate's own score counts (0, the default: it gates but neither counts nor
            reports a component).
        name: the rubric's name.

    Registered as ``reward="gate"``, so it is also reachable by name: ``reward="gate",
    reward_kwargs={"reward": "sentiment", "when": "keyword", "when_kwargs": {"keywords": ["film"]}}``.
    """

    name = "gate"

    def __init__(
        self,
        reward: Reward | RewardSpec,
        when: Reward | RewardSpec,
        threshold: float = 1.0,
        *,
        gate_weight: float = 0.0,
        reward_kwargs: Mapping[str, Any] | None = None,
        when_kwargs: Mapping[str, Any] | None = None,
        name: str = "gate",
    ) -> None:
        super().__init__(
            (_as_reward(when, when_kwargs), threshold),
            _as_reward(reward, reward_kwargs),
            weights=[gate_weight, 1.0],
            name=name,
        )
