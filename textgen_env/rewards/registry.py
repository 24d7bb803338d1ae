"""The reward registry: names -> reward factories, and `make_reward`, which turns any accepted spec into a `Reward`."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any

from textgen_env.rewards.base import FunctionReward, Reward, RewardFunction, WeightedReward

__all__ = ["RewardSpec", "available_rewards", "make_reward", "register_reward"]

RewardSpec = str | Reward | RewardFunction | Mapping[str | Reward | RewardFunction, float]

_REGISTRY: dict[str, Callable[..., Reward]] = {}


def register_reward(name: str, factory: Callable[..., Reward], *, overwrite: bool = False) -> None:
    """Make `factory(**kwargs) -> Reward` available as ``reward=name`` (kwargs come from ``reward_kwargs``)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"Expected a non-empty str as the reward name, got {name!r}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"Expected a new reward name, got {name!r}, which is registered already (overwrite=True)")
    _REGISTRY[name] = factory


def available_rewards() -> list[str]:
    """The registered reward names, sorted."""
    return sorted(_REGISTRY)


def _from_name(name: str, kwargs: Mapping[str, Any]) -> Reward:
    if name not in _REGISTRY:
        raise ValueError(f"Expected reward to be one of {available_rewards()} or a callable, got {name!r}")
    try:
        reward = _REGISTRY[name](**kwargs)
    except TypeError as error:
        raise TypeError(f"Bad reward_kwargs for reward {name!r}: {error}") from error
    reward.name = name
    return reward


def _single(spec: Any, kwargs: Mapping[str, Any]) -> Reward:
    if isinstance(spec, Reward):
        return spec
    if isinstance(spec, str):
        return _from_name(spec, kwargs)
    if callable(spec):
        return FunctionReward(spec)
    raise TypeError(
        f"Expected reward to be a registered name, a Reward, a callable (prompt, completion, done) -> float, or a "
        f"dict of those to weights, got {type(spec).__name__}"
    )


def make_reward(spec: RewardSpec, reward_kwargs: Mapping[str, Any] | None = None) -> Reward:
    """Turn a name, a callable, a `Reward` or a ``{reward: weight}`` dict into a `Reward`.

    Args:
        spec: the reward spec, as accepted by ``TextGenEnv(reward=...)``.
        reward_kwargs: constructor arguments for a named reward; for a dict spec, a mapping from each name in
            the dict to its own keyword arguments.
    """
    kwargs = dict(reward_kwargs or {})
    if isinstance(spec, Mapping):
        terms: dict[Reward, float] = {}
        for key, weight in spec.items():
            if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
                raise ValueError(f"Expected a finite number as the weight of reward {key!r}, got {weight!r}")
            own_kwargs = kwargs.get(key, {}) if isinstance(key, str) else {}
            terms[_single(key, own_kwargs)] = weight
        return WeightedReward(terms)
    return _single(spec, kwargs)
