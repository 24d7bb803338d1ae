"""Means with standard errors for evaluations: plain, clustered by prompt, and paired (before/after on shared seeds).

Completions of the same prompt are not independent draws of "a held-out prompt": they share the prompt's difficulty.
The standard errors here therefore treat each prompt as one sample (the mean of its completions) whenever the
values come with prompt ids, which is the honest error bar for "how would this policy do on new prompts".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["MeanWithError", "mean_with_error", "paired_difference"]


class MeanWithError(tuple):
    """``(mean, standard_error, n)``: n is the number of independent units the error is computed over."""

    __slots__ = ()

    def __new__(cls, mean: float, se: float, n: int) -> MeanWithError:
        return super().__new__(cls, (float(mean), float(se), int(n)))

    @property
    def mean(self) -> float:
        return self[0]

    @property
    def se(self) -> float:
        return self[1]

    @property
    def n(self) -> int:
        return self[2]

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.se:.3f} (n={self.n})"


def _as_array(name: str, values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"Expected {name} to be a non-empty 1-D sequence of numbers, got shape {array.shape}")
    return array


def mean_with_error(
    values: Sequence[float] | np.ndarray, groups: Sequence[int] | np.ndarray | None = None
) -> MeanWithError:
    """Mean of `values` and its standard error.

    Without `groups`: the plain ``std(ddof=1) / sqrt(n)`` over the values. With `groups` (one id per value, e.g.
    the prompt index of each completion): the values are averaged within each group first, and the mean and its
    error are those of the group means (``n`` = number of groups). The standard error is NaN when ``n < 2``.
    """
    values = _as_array("values", values)
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != values.shape:
            raise ValueError(f"Expected one group id per value ({values.shape[0]}), got {groups.shape[0]}")
        _, inverse = np.unique(groups, return_inverse=True)
        sums = np.bincount(inverse, weights=values)
        counts = np.bincount(inverse)
        values = sums / counts
    n = values.shape[0]
    se = float(values.std(ddof=1) / math.sqrt(n)) if n >= 2 else math.nan
    return MeanWithError(float(values.mean()), se, n)


def paired_difference(
    before: Sequence[float] | np.ndarray,
    after: Sequence[float] | np.ndarray,
    groups: Sequence[int] | np.ndarray | None = None,
) -> MeanWithError:
    """Mean of ``after - before`` over paired values (same prompt, same sampling seed) and its standard error.

    Pairing removes the between-prompt variance that two separate errors would count twice.
    """
    before, after = _as_array("before", before), _as_array("after", after)
    if before.shape != after.shape:
        raise ValueError(f"Expected before and after to pair up, got {before.shape[0]} and {after.shape[0]} values")
    return mean_with_error(after - before, groups)
