"""The batched `Reward` protocol, the adapter for plain per-sample functions, and weighted mixes.

A reward scores a batch of completions at once, so the vector env makes one call per step for all slots:

>>> import numpy as np
>>> class Shouty(Reward):
...     name = "shouty"
...     def __call__(self, prompts, completions, dones):
...         return np.array([c.count("!") for c in completions], dtype=float)
>>> Shouty()(["Hi"], ["wow!!"], [True])
array([2.])
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import cast

import numpy as np

__all__ = ["FunctionReward", "Reward", "WeightedReward", "check_scores"]

RewardFunction = Callable[[str, str, bool], float]


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def check_scores(name: str, scores: object, prompts: Sequence[str]) -> np.ndarray:
    """Validate a reward's output: one finite number per prompt, as float64.

    Raises:
        TypeError: a value that is not a number (names the reward and the prompt).
        ValueError: the wrong number of values, or NaN/inf (names the reward and the prompt).
    """
    try:
        array = np.asarray(scores, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        values = list(scores) if isinstance(scores, (list, tuple)) else [scores]
        for value, prompt in zip(values, prompts):
            if not isinstance(value, numbers.Real):
                raise TypeError(
                    f"Expected reward {name!r} to return numbers, got {type(value).__name__} {value!r} "
                    f"for prompt {_short(prompt)}"
                ) from None
        raise TypeError(f"Expected reward {name!r} to return numbers, got {type(scores).__name__}") from None
    if array.shape[0] != len(prompts):
        raise ValueError(
            f"Expected reward {name!r} to return {len(prompts)} values (one per completion), got {array.shape[0]}"
        )
    bad = ~np.isfinite(array)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"Expected reward {name!r} to return finite numbers, got {array[i]} for prompt {_short(prompts[i])}"
        )
    return array


class Reward(abc.ABC):
    """A batched reward: ``reward(prompts, completions, dones) -> np.ndarray`` of shape ``(len(prompts),)``.

    Subclasses set `name` and implement `__call__`. A reward that needs reference texts (BLEU, ROUGE) sets
    ``needs_references = True`` and receives ``references=`` (one tuple of strings per completion) as well.
    `components` splits the score into named parts whose sum is the score; the env reports them in ``info``.
    """

    name: str = "reward"
    needs_references: bool = False

    @abc.abstractmethod
    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        """Score each (prompt, completion) pair; ``dones[i]`` says whether completion i is finished."""

    @property
    def component_names(self) -> tuple[str, ...]:
        """The keys that `components` returns."""
        return (self.name,)

    def components(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        dones: Sequence[bool],
        references: Sequence[tuple[str, ...]] | None = None,
    ) -> dict[str, np.ndarray]:
        """The validated score split by component (a single component, `name`, unless overridden)."""
        if self.needs_references:
            if references is None:
                raise ValueError(
                    f"Expected references for reward {self.name!r}, got none; use a prompt source that supplies "
                    "them (a .jsonl file with a 'references' list per line, or prompts='facts')"
                )
            scores = self(prompts, completions, dones, references=references)  # type: ignore[call-arg]  # needs_references
        else:
            scores = self(prompts, completions, dones)
        return {self.name: check_scores(self.name, scores, prompts)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class FunctionReward(Reward):
    """Adapter that turns a per-sample function ``f(prompt, completion, done) -> float`` into a batched `Reward`."""

    def __init__(self, function: RewardFunction, name: str | None = None) -> None:
        if not callable(function):
            raise TypeError(f"Expected a callable reward function, got {type(function).__name__}")
        self.function = function
        self.name = cast(str, name or getattr(function, "__name__", type(function).__name__))

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        scores = np.empty(len(prompts), dtype=np.float64)
        for i, (prompt, completion, done) in enumerate(zip(prompts, completions, dones)):
            value = self.function(prompt, completion, bool(done))
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
                raise TypeError(
                    f"Expected reward {self.name!r} to return a number, got {type(value).__name__} {value!r} "
                    f"for prompt {_short(prompt)}"
                )
            scores[i] = float(value)
        return scores


class WeightedReward(Reward):
    """A weighted sum of rewards; each weighted term is reported as its own component.

    Args:
        terms: reward -> weight; every weight must be a finite number.
        name: the mix's name.
    """

    def __init__(self, terms: Mapping[Reward, float], name: str = "mix") -> None:
        if not terms:
            raise ValueError("Expected at least one reward in the mix, got an empty mapping")
        self.terms: list[tuple[Reward, float]] = []
        names: set[str] = set()
        for reward, weight in terms.items():
            if (
                isinstance(weight, (bool, np.bool_))
                or not isinstance(weight, numbers.Real)
                or not math.isfinite(weight)
            ):
                raise ValueError(f"Expected a finite number as the weight of reward {reward.name!r}, got {weight!r}")
            if names & set(reward.component_names):
                raise ValueError(f"Expected distinct reward names in a mix, got {reward.name!r} twice")
            names.update(reward.component_names)
            self.terms.append((reward, float(weight)))
        self.name = name
        self.needs_references = any(reward.needs_references for reward, _ in self.terms)

    @property
    def component_names(self) -> tuple[str, ...]:
        return tuple(key for reward, _ in self.terms for key in reward.component_names)

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        return cast(np.ndarray, sum(self.components(prompts, completions, dones).values()))  # >= 1 term: an array

    def components(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        dones: Sequence[bool],
        references: Sequence[tuple[str, ...]] | None = None,
    ) -> dict[str, np.ndarray]:
        parts: dict[str, np.ndarray] = {}
        for reward, weight in self.terms:
            for key, scores in reward.components(prompts, completions, dones, references).items():
                parts[key] = weight * scores
        return parts

    def __repr__(self) -> str:
        inner = ", ".join(f"{reward.name}: {weight}" for reward, weight in self.terms)
        return f"WeightedReward({{{inner}}})"
