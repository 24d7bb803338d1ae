"""Means and standard errors against the textbook formulas: plain, clustered by prompt, paired."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.evaluation.statistics import mean_with_error, paired_difference


def naive_se(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))


def test_plain_mean_and_standard_error():
    values = [0.5, -0.25, 1.0, 0.0, 2.0]
    result = mean_with_error(values)
    assert result.mean == pytest.approx(sum(values) / 5, abs=1e-12)
    assert result.se == pytest.approx(naive_se(values), abs=1e-12) and result.n == 5


def test_clustered_error_is_that_of_the_group_means():
    values = [1.0, 1.2, 0.8, 3.0, 3.5, 2.5, -1.0, -0.5, -0.75]
    groups = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    means = [sum(values[i : i + 3]) / 3 for i in (0, 3, 6)]
    result = mean_with_error(values, groups)
    assert result.mean == pytest.approx(sum(means) / 3, abs=1e-12)
    assert result.se == pytest.approx(naive_se(means), abs=1e-12) and result.n == 3
    assert result.se > mean_with_error(values).se  # prompts differ: treating samples as independent understates it


def test_paired_difference_removes_shared_variance():
    rng = np.random.default_rng(0)
    prompt_effect = np.repeat(rng.normal(0, 1, 20), 4)
    before = prompt_effect + rng.normal(0, 0.1, 80)
    after = before + 0.3 + rng.normal(0, 0.1, 80)
    groups = np.repeat(np.arange(20), 4)
    gain = paired_difference(before, after, groups)
    unpaired_se = math.hypot(mean_with_error(before, groups).se, mean_with_error(after, groups).se)
    assert abs(gain.mean - 0.3) < 3 * gain.se and gain.se < unpaired_se / 5
    assert str(gain).startswith(f"{gain.mean:.3f} ± ")


def test_bad_input():
    with pytest.raises(
        ValueError, match=r"Expected values to be a non-empty 1-D sequence of numbers, got shape \(0,\)"
    ):
        mean_with_error([])
    with pytest.raises(ValueError, match=r"Expected one group id per value \(2\), got 1"):
        mean_with_error([1.0, 2.0], [0])
    with pytest.raises(ValueError, match=r"Expected before and after to pair up, got 2 and 3 values"):
        paired_difference([1.0, 2.0], [1.0, 2.0, 3.0])
    assert math.isnan(mean_with_error([1.0]).se)
