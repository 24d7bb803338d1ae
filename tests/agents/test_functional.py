"""agents.functional against naive Python-loop and textbook formulas, over dtypes, shapes and edge cases."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch

from agents.functional import (
    clipped_policy_loss,
    clipped_value_loss,
    discounted_returns,
    entropy_from_logits,
    exact_kl_from_logits,
    gae_advantages,
    group_relative_advantages,
    grouped_relative_advantages,
    kl_k1,
    kl_k2,
    kl_k3,
    kl_penalized_rewards,
    leave_one_out_advantages,
    masked_mean,
    masked_sum,
    masked_var,
    masked_whiten,
    selective_log_softmax,
)
from agents.kl_control import AdaptiveKLController, FixedKLController

DTYPES = [
    pytest.param(torch.float32, id="float32"),
    pytest.param(torch.float64, id="float64"),
    pytest.param(torch.bfloat16, id="bfloat16"),
]
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10, torch.bfloat16: 2e-2}


def _randn(*shape: int, dtype: torch.dtype = torch.float32, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=generator, dtype=torch.float64)).to(dtype)


def _right_padded_mask(lengths: list[int], steps: int) -> torch.Tensor:
    return torch.arange(steps)[None, :] < torch.tensor(lengths)[:, None]  # (B, T) bool


def _assert_close(actual: torch.Tensor, expected, dtype: torch.dtype) -> None:
    expected = torch.as_tensor(expected, dtype=torch.float64)
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(actual.double(), expected, rtol=tol, atol=tol)


def _log_softmax_row(row: list[float]) -> list[float]:
    peak = max(row)
    log_normalizer = peak + math.log(sum(math.exp(x - peak) for x in row))
    return [x - log_normalizer for x in row]


# selective_log_softmax and entropy_from_logits

SHAPES = [
    pytest.param((7,), id="V"),
    pytest.param((4, 7), id="BxV"),
    pytest.param((2, 3, 11), id="BxTxV"),
    pytest.param((2, 2, 3, 5), id="BxKxTxV"),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_selective_log_softmax_matches_naive(dtype, shape):
    logits = _randn(*shape, dtype=dtype, scale=3.0)
    index = torch.randint(0, shape[-1], shape[:-1], generator=torch.Generator().manual_seed(1))
    result = selective_log_softmax(logits, index)
    assert result.shape == shape[:-1]
    assert result.dtype == dtype
    rows, ids = logits.double().reshape(-1, shape[-1]).tolist(), index.reshape(-1).tolist()
    expected = [_log_softmax_row(row)[k] for row, k in zip(rows, ids)]
    _assert_close(result.reshape(-1), expected, dtype)


def test_selective_log_softmax_is_stable_and_differentiable():
    logits = _randn(3, 4, 9, dtype=torch.float64).requires_grad_()
    index = torch.randint(0, 9, (3, 4), generator=torch.Generator().manual_seed(2))
    shifted = selective_log_softmax(logits.detach() + 1e4, index)
    torch.testing.assert_close(shifted, selective_log_softmax(logits.detach(), index))
    selective_log_softmax(logits, index).sum().backward()
    reference = logits.detach().clone().requires_grad_()
    torch.log_softmax(reference, -1).gather(-1, index[..., None]).sum().backward()
    torch.testing.assert_close(logits.grad, reference.grad)


def test_selective_log_softmax_errors():
    with pytest.raises(ValueError, match=r"got logits \(2, 3, 5\) and index \(2, 4\)"):
        selective_log_softmax(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match=r"Expected index to be an integer tensor, got torch\.float32"):
        selective_log_softmax(torch.zeros(2, 5), torch.zeros(2))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_entropy_from_logits_matches_naive(dtype, shape):
    logits = _randn(*shape, dtype=dtype, scale=2.0)
    result = entropy_from_logits(logits)
    assert result.shape == shape[:-1]
    assert result.dtype == dtype
    expected = [
        -sum(math.exp(lp) * lp for lp in _log_softmax_row(row))
        for row in logits.double().reshape(-1, shape[-1]).tolist()
    ]
    _assert_close(result.reshape(-1), expected, dtype)


def test_entropy_uniform_and_banned_tokens():
    assert entropy_from_logits(torch.zeros(3, 8)).tolist() == pytest.approx([math.log(8)] * 3)
    logits = torch.tensor([[0.0, 0.0, -math.inf, -math.inf]], requires_grad=True)
    entropy = entropy_from_logits(logits)
    assert entropy.item() == pytest.approx(math.log(2))
    entropy.sum().backward()
    assert torch.isfinite(logits.grad).all()


# masked statistics

REDUCTIONS = [
    pytest.param((5,), None, id="1d-all"),
    pytest.param((3, 4), None, id="2d-all"),
    pytest.param((3, 4), 1, id="2d-dim1"),
    pytest.param((3, 4), 0, id="2d-dim0"),
    pytest.param((2, 3, 4), (1, 2), id="3d-dims12"),
    pytest.param((2, 3, 4), -1, id="3d-dim-1"),
]


def _naive_masked_reduce(values: torch.Tensor, mask: torch.Tensor, dim, mean: bool) -> np.ndarray:
    array, keep = values.double().numpy(), mask.bool().numpy()
    reduced = set(range(array.ndim)) if dim is None else {d % array.ndim for d in np.atleast_1d(dim)}
    kept_dims = [d for d in range(array.ndim) if d not in reduced]
    totals, counts = np.zeros([array.shape[d] for d in kept_dims]), np.zeros([array.shape[d] for d in kept_dims])
    for index in np.ndindex(*array.shape):
        if keep[index]:
            out = tuple(index[d] for d in kept_dims)
            totals[out] += array[index]
            counts[out] += 1
    if not mean:
        return totals
    return np.where(counts > 0, totals / np.maximum(counts, 1), 0.0)


@pytest.mark.parametrize("mask_kind", ["bool", "float"])
@pytest.mark.parametrize(("shape", "dim"), REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_sum_and_mean_match_naive(dtype, shape, dim, mask_kind):
    values = _randn(*shape, dtype=dtype)
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(3)) > 0.4
    mask = mask if mask_kind == "bool" else mask.to(dtype)
    total, mean = masked_sum(values, mask, dim=dim), masked_mean(values, mask, dim=dim)
    assert total.dtype == mean.dtype == dtype
    _assert_close(total, _naive_masked_reduce(values, mask, dim, mean=False), dtype)
    _assert_close(mean, _naive_masked_reduce(values, mask, dim, mean=True), dtype)


def test_masked_mean_of_nothing_is_zero_and_ignores_nan_padding():
    values = torch.tensor([[1.0, math.nan], [math.nan, math.inf]], requires_grad=True)
    mask = torch.tensor([[True, False], [False, False]])
    assert masked_mean(values, torch.zeros(2, 2)).item() == 0.0
    assert masked_mean(values, mask, dim=1).tolist() == [1.0, 0.0]
    assert masked_sum(values, mask).item() == 1.0
    masked_mean(values, mask).backward()
    assert values.grad.tolist() == [[1.0, 0.0], [0.0, 0.0]]


@pytest.mark.parametrize("unbiased", [True, False], ids=["unbiased", "biased"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_var_matches_naive(dtype, unbiased):
    values = _randn(4, 6, dtype=dtype, scale=2.0)
    mask = torch.rand(4, 6, generator=torch.Generator().manual_seed(4)) > 0.3
    kept = values.double()[mask].tolist()
    expected = statistics.variance(kept) if unbiased else statistics.pvariance(kept)
    result = masked_var(values, mask, unbiased=unbiased)
    assert result.dtype == dtype
    _assert_close(result, expected, dtype)


def test_masked_var_with_fewer_than_two_valid_entries_is_zero():
    values = torch.tensor([3.0, 5.0])
    assert masked_var(values, torch.tensor([True, False])).item() == 0.0
    assert masked_var(values, torch.tensor([False, False])).item() == 0.0
    assert masked_var(values, torch.tensor([False, False]), unbiased=False).item() == 0.0


@pytest.mark.parametrize("shift_mean", [True, False], ids=["shift", "keep-mean"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_whiten(dtype, shift_mean):
    values = _randn(3, 8, dtype=dtype, scale=4.0) + 2.0
    mask = _right_padded_mask([8, 5, 2], 8)
    whitened = masked_whiten(values, mask, shift_mean=shift_mean)
    kept = values.double()[mask].tolist()
    mean, std = statistics.mean(kept), math.sqrt(statistics.variance(kept) + 1e-8)
    offset, rows = (0.0 if shift_mean else mean), zip(values.double().tolist(), mask.tolist())
    expected = [[(v - mean) / std + offset if m else 0.0 for v, m in zip(row, keep)] for row, keep in rows]
    assert whitened.dtype == dtype
    _assert_close(whitened, expected, dtype)
    if dtype == torch.float64:
        assert masked_mean(whitened, mask).item() == pytest.approx(0.0 if shift_mean else mean, abs=1e-9)
        assert masked_var(whitened, mask).item() == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize(
    "function",
    [masked_sum, masked_mean, masked_var, masked_whiten],
    ids=["sum", "mean", "var", "whiten"],
)
def test_masked_statistics_reject_mismatched_shapes(function):
    with pytest.raises(ValueError, match=r"values and mask to have the same shape, got values \(2, 3\), mask \(3, 2\)"):
        function(torch.zeros(2, 3), torch.ones(3, 2))


# discounted returns and GAE

LENGTHS = [5, 1, 0, 3]  # full, single step, empty, partial (T = 5)
GAMMAS = [pytest.param(0.0, id="gamma0"), pytest.param(0.9, id="gamma0.9"), pytest.param(1.0, id="gamma1")]


def _naive_returns(rewards: list[list[float]], lengths: list[int], gamma: float, steps: int) -> list[list[float]]:
    out = []
    for row, length in zip(rewards, lengths):
        returns, running = [0.0] * steps, 0.0
        for t in reversed(range(length)):
            running = row[t] + gamma * running
            returns[t] = running
        out.append(returns)
    return out


def _naive_gae(rewards, values, lengths, gamma, lam, last_values, steps):
    advantages, returns = [], []
    for b, length in enumerate(lengths):
        adv, running = [0.0] * steps, 0.0
        for t in reversed(range(length)):
            bootstrap = 0.0 if last_values is None else last_values[b]
            next_value = values[b][t + 1] if t + 1 < length else bootstrap
            delta = rewards[b][t] + gamma * next_value - values[b][t]
            running = delta + gamma * lam * running
            adv[t] = running
        advantages.append(adv)
        returns.append([adv[t] + values[b][t] if t < length else 0.0 for t in range(steps)])
    return advantages, returns


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_discounted_returns_match_naive(dtype, gamma):
    rewards, mask = _randn(4, 5, dtype=dtype), _right_padded_mask(LENGTHS, 5)
    result = discounted_returns(rewards, mask.float(), gamma)
    assert result.dtype == dtype
    _assert_close(result, _naive_returns(rewards.double().tolist(), LENGTHS, gamma, 5), dtype)


def test_discounted_returns_edge_cases():
    rewards, mask = _randn(4, 5), _right_padded_mask(LENGTHS, 5)
    torch.testing.assert_close(discounted_returns(rewards, mask, 0.0), rewards * mask)
    single = _right_padded_mask([1, 1, 1, 1], 5)
    torch.testing.assert_close(discounted_returns(rewards, single, 0.9), rewards * single)
    garbage = torch.where(mask, rewards, torch.tensor(math.nan))
    torch.testing.assert_close(discounted_returns(garbage, mask, 0.9), discounted_returns(rewards, mask, 0.9))
    assert discounted_returns(rewards, mask, 1.0)[:, 0].tolist() == pytest.approx((rewards * mask).sum(1).tolist())


@pytest.mark.parametrize("bootstrap", [False, True], ids=["terminal", "bootstrap"])
@pytest.mark.parametrize(("gamma", "lam"), [(0.99, 0.95), (0.9, 0.0), (1.0, 1.0), (0.0, 0.5)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gae_matches_naive(dtype, gamma, lam, bootstrap):
    rewards, values = _randn(4, 5, dtype=dtype, seed=5), _randn(4, 5, dtype=dtype, seed=6)
    last_values = _randn(4, dtype=dtype, seed=7) if bootstrap else None
    mask = _right_padded_mask(LENGTHS, 5)
    advantages, returns = gae_advantages(rewards, values, mask, gamma, lam, last_values=last_values)
    assert advantages.dtype == returns.dtype == dtype
    naive_last = None if last_values is None else last_values.double().tolist()
    expected = _naive_gae(rewards.double().tolist(), values.double().tolist(), LENGTHS, gamma, lam, naive_last, 5)
    _assert_close(advantages, expected[0], dtype)
    _assert_close(returns, expected[1], dtype)


def test_gae_lambda_one_is_discounted_returns_minus_values():
    rewards, values, mask = _randn(4, 5, seed=8), _randn(4, 5, seed=9), _right_padded_mask(LENGTHS, 5)
    advantages, returns = gae_advantages(rewards, values, mask, 0.9, 1.0)
    torch.testing.assert_close(advantages, (discounted_returns(rewards, mask, 0.9) - values) * mask)
    torch.testing.assert_close(returns, discounted_returns(rewards, mask, 0.9))
    # bootstrapping is the same as adding gamma * last_value to each episode's last reward
    last_values = _randn(4, seed=10)
    last_step = torch.tensor(LENGTHS).clamp(min=1)[:, None] - 1 == torch.arange(5)[None, :]  # (B, T)
    shaped = rewards + 0.9 * last_values[:, None] * (last_step & mask)
    advantages, _ = gae_advantages(rewards, values, mask, 0.9, 1.0, last_values=last_values)
    torch.testing.assert_close(advantages, (discounted_returns(shaped, mask, 0.9) - values) * mask)


def test_gae_edge_cases():
    rewards, values, mask = _randn(4, 5, seed=11), _randn(4, 5, seed=12), _right_padded_mask(LENGTHS, 5)
    advantages, returns = gae_advantages(rewards, values, mask, 0.0, 0.7)
    torch.testing.assert_close(advantages, (rewards - values) * mask)
    assert (advantages[2] == 0).all() and (returns[2] == 0).all()  # all-masked row
    torch.testing.assert_close(returns, (advantages + values) * mask)
    single = _right_padded_mask([1, 1, 1, 1], 5)
    last_values = _randn(4, seed=13)
    advantages, _ = gae_advantages(rewards, values, single, 0.9, 0.95, last_values=last_values)
    torch.testing.assert_close(advantages[:, 0], rewards[:, 0] + 0.9 * last_values - values[:, 0])
    assert (advantages[:, 1:] == 0).all()
    values.requires_grad_()
    advantages, returns = gae_advantages(rewards, values, mask, 0.9, 0.95)
    assert not advantages.requires_grad and not returns.requires_grad


def test_returns_and_gae_errors():
    rewards, mask = torch.zeros(2, 3), torch.ones(2, 3)
    with pytest.raises(ValueError, match=r"got rewards \(2, 3\), mask \(2, 4\)"):
        discounted_returns(rewards, torch.ones(2, 4), 0.9)
    with pytest.raises(ValueError, match=r"Expected rewards to be 2-D \(B, T\), got shape \(3,\)"):
        discounted_returns(torch.zeros(3), torch.ones(3), 0.9)
    with pytest.raises(ValueError, match=r"Expected gamma to be a number in \[0, 1\], got 1.5"):
        discounted_returns(rewards, mask, 1.5)
    with pytest.raises(ValueError, match=r"got rewards \(2, 3\), values \(3, 2\), mask \(2, 3\)"):
        gae_advantages(rewards, torch.zeros(3, 2), mask, 0.9, 0.95)
    with pytest.raises(ValueError, match=r"Expected lam to be a number in \[0, 1\], got nan"):
        gae_advantages(rewards, rewards, mask, 0.9, math.nan)
    with pytest.raises(ValueError, match=r"last_values to have shape \(B,\) = \(2,\).*last_values \(2, 1\)"):
        gae_advantages(rewards, rewards, mask, 0.9, 0.95, last_values=torch.zeros(2, 1))


# group-relative and leave-one-out advantages


@pytest.mark.parametrize("normalize_std", [True, False], ids=["std", "no-std"])
@pytest.mark.parametrize("group_size", [1, 2, 4], ids=lambda g: f"group{g}")
@pytest.mark.parametrize("dtype", DTYPES)
def test_group_relative_advantages_match_naive(dtype, group_size, normalize_std):
    scores = _randn(3 * group_size, dtype=dtype, seed=14, scale=2.0)
    result = group_relative_advantages(scores, group_size, normalize_std=normalize_std)
    assert result.shape == scores.shape and result.dtype == dtype
    expected = []
    for start in range(0, len(scores), group_size):
        group = scores.double()[start : start + group_size].tolist()
        std = statistics.stdev(group) if group_size > 1 else 0.0
        expected += [(s - statistics.mean(group)) / ((std + 1e-4) if normalize_std else 1.0) for s in group]
    _assert_close(result, expected, dtype)
    group_means = result.double().view(-1, group_size).mean(1)
    torch.testing.assert_close(group_means, torch.zeros(3, dtype=torch.float64), atol=TOLERANCE[dtype], rtol=0)


def test_group_relative_advantages_of_equal_scores_are_zero():
    assert group_relative_advantages(torch.ones(6), 3).tolist() == [0.0] * 6


@pytest.mark.parametrize("normalize_std", [True, False], ids=["std", "no-std"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_grouped_relative_advantages_match_naive(dtype, normalize_std):
    scores = _randn(11, dtype=dtype, seed=16, scale=2.0)
    ids = torch.tensor([7, 2, 7, 5, 2, 7, 9, 5, 2, 2, 7])  # interleaved groups of 4, 4 and 2, and a group of one
    result = grouped_relative_advantages(scores, ids, normalize_std=normalize_std)
    assert result.shape == scores.shape and result.dtype == dtype
    values, groups, expected = scores.double().tolist(), ids.tolist(), []
    for score, group_id in zip(values, groups):
        group = [v for v, g in zip(values, groups) if g == group_id]
        std = statistics.stdev(group) if len(group) > 1 else 0.0
        expected.append((score - statistics.mean(group)) / ((std + 1e-4) if normalize_std else 1.0))
    tol = {torch.float32: 1e-6, torch.float64: 1e-10, torch.bfloat16: 2e-2}[dtype]
    torch.testing.assert_close(result.double(), torch.tensor(expected, dtype=torch.float64), rtol=tol, atol=tol)
    assert result[6] == 0  # a group of one has no peer to be judged against


@pytest.mark.parametrize("normalize_std", [True, False], ids=["std", "no-std"])
def test_grouped_relative_advantages_of_fixed_groups_are_the_dense_formula_exactly(normalize_std):
    scores = _randn(12, seed=17, scale=3.0)
    rows = scores.view(3, 4)  # the fixed-size formula GRPO used on TextGen-v0: bit for bit the same numbers
    dense = rows - rows.mean(dim=1, keepdim=True)
    if normalize_std:
        dense = dense / (rows.std(dim=1, keepdim=True) + 1e-4)
    grouped = grouped_relative_advantages(scores, torch.arange(12) // 4, normalize_std=normalize_std)
    assert torch.equal(grouped, dense.reshape(-1))
    assert torch.equal(group_relative_advantages(scores, 4, normalize_std=normalize_std), grouped)


@pytest.mark.parametrize("dtype", DTYPES)
def test_leave_one_out_advantages_match_naive(dtype):
    scores = _randn(12, dtype=dtype, seed=15)
    result = leave_one_out_advantages(scores, 4)
    assert result.dtype == dtype
    values, expected = scores.double().tolist(), []
    for start in range(0, 12, 4):
        group = values[start : start + 4]
        expected += [s - statistics.mean(group[:i] + group[i + 1 :]) for i, s in enumerate(group)]
    _assert_close(result, expected, dtype)
    torch.testing.assert_close(
        result.double().view(3, 4).sum(1), torch.zeros(3, dtype=torch.float64), atol=0.05, rtol=0
    )


def test_group_advantage_errors():
    with pytest.raises(ValueError, match=r"number of scores \(10\) to be a multiple of group_size \(3\)"):
        group_relative_advantages(torch.zeros(10), 3)
    with pytest.raises(ValueError, match="Expected group_size to be an integer >= 1, got 0"):
        group_relative_advantages(torch.zeros(4), 0)
    with pytest.raises(ValueError, match=r"Expected scores to be 1-D \(N,\), got shape \(2, 2\)"):
        group_relative_advantages(torch.zeros(2, 2), 2)
    with pytest.raises(ValueError, match="Expected group_size to be an integer >= 2, got 1"):
        leave_one_out_advantages(torch.zeros(4), 1)
    with pytest.raises(ValueError, match=r"Expected scores and group_ids to have the same shape"):
        grouped_relative_advantages(torch.zeros(4), torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"integer group_ids, got shape \(4,\) and torch.float32"):
        grouped_relative_advantages(torch.zeros(4), torch.zeros(4))


# KL estimators and exact KL


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_estimators_match_formulas(dtype):
    logp, ref_logp = -_randn(20, dtype=dtype, seed=16).abs(), -_randn(20, dtype=dtype, seed=17).abs()
    pairs = list(zip(logp.double().tolist(), ref_logp.double().tolist()))
    _assert_close(kl_k1(logp, ref_logp), [p - q for p, q in pairs], dtype)
    _assert_close(kl_k2(logp, ref_logp), [0.5 * (p - q) ** 2 for p, q in pairs], dtype)
    _assert_close(kl_k3(logp, ref_logp), [math.exp(q - p) - (q - p) - 1 for p, q in pairs], dtype)
    assert (kl_k2(logp, ref_logp) >= 0).all() and (kl_k3(logp, ref_logp) >= 0).all()
    close = kl_k3(logp, logp + 1e-6)
    assert (close >= 0).all() and (kl_k3(logp, logp) == 0).all()


def test_kl_penalized_rewards_match_naive():
    rewards, logp, ref_logp = _randn(3, 5, seed=30), -_randn(3, 5, seed=31).abs(), -_randn(3, 5, seed=32).abs()
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    result = kl_penalized_rewards(rewards, logp, ref_logp, mask, 0.3)
    expected = [
        [r - 0.3 * (p - q) if m else 0.0 for r, p, q, m in zip(*rows)]
        for rows in zip(rewards.tolist(), logp.tolist(), ref_logp.tolist(), mask.tolist())
    ]
    torch.testing.assert_close(result, torch.tensor(expected), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"Expected kl_coef to be a non-negative number, got -1"):
        kl_penalized_rewards(rewards, logp, ref_logp, mask, -1)


def test_exact_kl_has_exactly_zero_gradient_at_the_reference():
    logits = _randn(4, 50, seed=33).requires_grad_(True)
    exact_kl_from_logits(logits, logits.detach()).sum().backward()
    assert (logits.grad == 0).all()


def test_kl_estimators_reject_mismatched_shapes():
    for estimator in (kl_k1, kl_k2, kl_k3):
        with pytest.raises(ValueError, match=r"got logp \(2, 3\), ref_logp \(2,\)"):
            estimator(torch.zeros(2, 3), torch.zeros(2))


def test_sample_means_of_k1_and_k3_approximate_exact_kl():
    generator = torch.Generator().manual_seed(18)
    logits, ref_logits = torch.randn(6, generator=generator), torch.randn(6, generator=generator)
    tokens = torch.multinomial(logits.softmax(-1), 200_000, replacement=True, generator=generator)
    logp, ref_logp = torch.log_softmax(logits, -1)[tokens], torch.log_softmax(ref_logits, -1)[tokens]
    exact = exact_kl_from_logits(logits, ref_logits).item()
    assert exact > 0.05
    assert kl_k3(logp, ref_logp).mean().item() == pytest.approx(exact, rel=0.05)
    assert kl_k1(logp, ref_logp).mean().item() == pytest.approx(exact, rel=0.05)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_kl_matches_naive_sum_over_vocab(dtype, shape):
    logits, ref_logits = _randn(*shape, dtype=dtype, seed=19), _randn(*shape, dtype=dtype, seed=20)
    result = exact_kl_from_logits(logits, ref_logits)
    assert result.shape == shape[:-1] and result.dtype == dtype
    expected = []
    for row, ref_row in zip(
        logits.double().reshape(-1, shape[-1]).tolist(), ref_logits.double().reshape(-1, shape[-1]).tolist()
    ):
        log_p, log_q = _log_softmax_row(row), _log_softmax_row(ref_row)
        expected.append(sum(math.exp(a) * (a - b) for a, b in zip(log_p, log_q)))
    _assert_close(result.reshape(-1), expected, dtype)
    assert (result >= -TOLERANCE[dtype]).all()
    _assert_close(exact_kl_from_logits(logits, logits), torch.zeros(shape[:-1]), dtype)
    _assert_close(exact_kl_from_logits(logits, logits + 3.0), torch.zeros(shape[:-1]), dtype)  # shift invariance


def test_exact_kl_with_banned_tokens_and_errors():
    logits = torch.tensor([0.0, 1.0, -math.inf])
    ref_logits = torch.tensor([1.0, 0.0, -math.inf])
    expected = sum(
        p * math.log(p / q) for p, q in zip(logits.softmax(-1)[:2].tolist(), ref_logits.softmax(-1)[:2].tolist())
    )
    assert exact_kl_from_logits(logits, ref_logits).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match=r"got logits \(2, 5\), ref_logits \(2, 4\)"):
        exact_kl_from_logits(torch.zeros(2, 5), torch.zeros(2, 4))


# PPO losses


def _naive_policy_loss(logp, old_logp, advantages, mask, clip_range):
    surrogates, kls, clipped = [], [], []
    for lp, old, adv, m in zip(logp, old_logp, advantages, mask):
        if not m:
            continue
        ratio = math.exp(lp - old)
        surrogates.append(min(ratio * adv, min(max(ratio, 1 - clip_range), 1 + clip_range) * adv))
        kls.append(ratio - 1 - math.log(ratio))
        clipped.append(float(abs(ratio - 1) > clip_range))
    return -statistics.mean(surrogates), statistics.mean(kls), statistics.mean(clipped)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clipped_policy_loss_matches_naive(dtype):
    # ratios below, inside and above the clip range, for positive (row 0) and negative (row 1) advantages
    ratios = torch.tensor([[0.5, 0.7, 0.9, 1.1, 1.3, 1.6]], dtype=torch.float64).repeat(3, 1)
    old_logp = -_randn(3, 6, dtype=torch.float64, seed=21).abs()
    logp = (old_logp + ratios.log()).to(dtype)
    signs = torch.tensor([[1.0], [-1.0], [1.0]], dtype=torch.float64)
    advantages = (signs * (_randn(3, 6, dtype=torch.float64, seed=23).abs() + 0.1)).to(dtype)
    old_logp, mask = old_logp.to(dtype), _right_padded_mask([6, 6, 2], 6)
    loss, stats = clipped_policy_loss(logp, old_logp, advantages, mask, 0.2)
    flat = [t.double().reshape(-1).tolist() for t in (logp, old_logp, advantages)]
    expected_loss, expected_kl, expected_clip = _naive_policy_loss(*flat, mask.reshape(-1).tolist(), 0.2)
    assert 0 < expected_clip < 1  # both branches exercised
    _assert_close(loss, expected_loss, dtype)
    _assert_close(stats["approx_kl"], expected_kl, dtype)
    _assert_close(stats["clip_fraction"], expected_clip, dtype)


def test_clipped_policy_loss_at_ratio_one_and_gradients():
    old_logp, advantages, mask = -_randn(2, 4, seed=24).abs(), _randn(2, 4, seed=25), _right_padded_mask([4, 2], 4)
    logp = old_logp.clone().requires_grad_()
    loss, stats = clipped_policy_loss(logp, old_logp, advantages, mask, 0.2)
    torch.testing.assert_close(loss, -masked_mean(advantages, mask))
    assert stats["approx_kl"].item() == 0.0 and stats["clip_fraction"].item() == 0.0
    assert not stats["approx_kl"].requires_grad
    # positive advantage: a ratio above 1 + eps is clipped (no gradient), one below 1 - eps is not
    logp = torch.log(torch.tensor([[1.5, 0.5]])).requires_grad_()
    loss, _ = clipped_policy_loss(logp, torch.zeros(1, 2), torch.ones(1, 2), torch.ones(1, 2), 0.2)
    loss.backward()
    assert logp.grad[0, 0].item() == 0.0 and logp.grad[0, 1].item() != 0.0


def test_clipped_policy_loss_ignores_garbage_padding():
    logp, old_logp, advantages = -_randn(2, 4, seed=26).abs(), -_randn(2, 4, seed=27).abs(), _randn(2, 4, seed=28)
    mask = _right_padded_mask([4, 2], 4)
    clean, _ = clipped_policy_loss(logp, old_logp, advantages, mask, 0.2)
    noisy_logp = torch.where(mask, logp, torch.tensor(200.0)).requires_grad_()
    noisy, _ = clipped_policy_loss(noisy_logp, torch.where(mask, old_logp, -200.0), advantages, mask, 0.2)
    noisy.backward()
    torch.testing.assert_close(noisy, clean)
    assert torch.isfinite(noisy_logp.grad).all() and (noisy_logp.grad[~mask] == 0).all()


@pytest.mark.parametrize("clip_range", [None, 0.2, 100.0], ids=["unclipped", "clip0.2", "clip-wide"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_clipped_value_loss_matches_naive(dtype, clip_range):
    values, old_values, returns = (_randn(3, 5, dtype=dtype, seed=s) for s in (29, 30, 31))
    mask = _right_padded_mask([5, 3, 0], 5)
    terms = []
    for v, old, ret, m in zip(
        *(t.double().reshape(-1).tolist() for t in (values, old_values, returns)), mask.reshape(-1).tolist()
    ):
        if m:
            clipped = v if clip_range is None else old + min(max(v - old, -clip_range), clip_range)
            terms.append(0.5 * max((v - ret) ** 2, (clipped - ret) ** 2))
    _assert_close(clipped_value_loss(values, old_values, returns, mask, clip_range), statistics.mean(terms), dtype)
    if clip_range != 0.2:
        expected = 0.5 * masked_mean((values.double() - returns.double()) ** 2, mask)
        _assert_close(clipped_value_loss(values, old_values, returns, mask, clip_range), expected, dtype)


def test_ppo_loss_errors():
    ones = torch.ones(2, 3)
    with pytest.raises(ValueError, match=r"Expected logp, old_logp, advantages and mask to have the same shape"):
        clipped_policy_loss(ones, ones, torch.ones(2), ones, 0.2)
    with pytest.raises(ValueError, match="Expected clip_range to be a positive number, got 0"):
        clipped_policy_loss(ones, ones, ones, ones, 0)
    with pytest.raises(ValueError, match=r"got values \(2, 3\), old_values \(2, 3\), returns \(3,\), mask \(2, 3\)"):
        clipped_value_loss(ones, ones, torch.ones(3), ones, 0.2)
    with pytest.raises(ValueError, match=r"Expected clip_range to be a positive number, got -0\.1"):
        clipped_value_loss(ones, ones, ones, ones, -0.1)


# KL controllers


def test_adaptive_kl_controller_follows_ziegler():
    controller = AdaptiveKLController(init_kl_coef=0.2, target=6.0, horizon=10_000)
    controller.update(current_kl=12.0, n_steps=256)  # error clipped to +0.2
    assert controller.value == pytest.approx(0.2 * (1 + 0.2 * 256 / 10_000))
    before = controller.value
    controller.update(current_kl=5.4, n_steps=256)  # error -0.1
    assert controller.value == pytest.approx(before * (1 - 0.1 * 256 / 10_000))
    assert controller.value < before
    before = controller.value
    controller.update(current_kl=6.0, n_steps=256)
    assert controller.value == pytest.approx(before)
    controller.update(current_kl=0.0, n_steps=10_000)  # error clipped to -0.2
    assert controller.value == pytest.approx(before * 0.8)


def test_kl_controllers_state_round_trips():
    controller = AdaptiveKLController(0.1, 3.0, 1000)
    for kl in (10.0, 1.0, 4.0):
        controller.update(kl, 64)
    restored = AdaptiveKLController(0.5, 1.0, 10)
    restored.load_state_dict(controller.state_dict())
    assert restored == controller
    controller.update(7.0, 64)
    restored.update(7.0, 64)
    assert restored.value == controller.value
    fixed = FixedKLController(0.05)
    fixed.update(100.0, 64)
    assert fixed.value == 0.05
    other = FixedKLController(0.0)
    other.load_state_dict(fixed.state_dict())
    assert other == fixed and other.value == 0.05
    with pytest.raises(ValueError, match=r"Expected state_dict keys \['kl_coef', 'value'\], got \['value'\]"):
        other.load_state_dict({"value": 1.0})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"init_kl_coef": 0.1, "target": -1, "horizon": 10}, "Expected target to be a positive number, got -1"),
        ({"init_kl_coef": 0, "target": 6, "horizon": 10}, "Expected init_kl_coef to be a positive number, got 0"),
        ({"init_kl_coef": 0.1, "target": 6, "horizon": math.inf}, "Expected horizon to be a positive number, got inf"),
        ({"init_kl_coef": 0.1, "target": "6", "horizon": 10}, "Expected target to be a positive number, got '6'"),
    ],
    ids=["target", "init", "horizon", "string"],
)
def test_adaptive_kl_controller_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdaptiveKLController(**kwargs)


def test_kl_controller_update_and_fixed_validation():
    controller = AdaptiveKLController(0.1, 6.0, 10)
    with pytest.raises(ValueError, match="Expected current_kl to be finite, got nan"):
        controller.update(math.nan, 1)
    with pytest.raises(ValueError, match="Expected n_steps to be a non-negative number, got -1"):
        controller.update(1.0, -1)
    with pytest.raises(ValueError, match="Expected kl_coef to be a non-negative number, got -1"):
        FixedKLController(-1)
    assert FixedKLController(0).value == 0.0


def test_returns_and_gae_skip_masked_steps_inside_an_episode_as_if_removed():
    """Env-inserted tokens (tool results) are holes in the action mask: the returns and advantages of the actions
    must equal those of the episode with the holes cut out, and the holes get 0."""
    torch.manual_seed(0)
    rewards, values = torch.randn(3, 9, dtype=torch.float64), torch.randn(3, 9, dtype=torch.float64)
    mask = torch.tensor(
        [[1, 1, 0, 0, 1, 1, 0, 0, 0], [1, 0, 1, 0, 1, 0, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1, 1, 1]], dtype=torch.bool
    )
    last = torch.tensor([0.0, 0.5, -1.0], dtype=torch.float64)
    returns = discounted_returns(rewards, mask, 0.9)
    advantages, targets = gae_advantages(rewards, values, mask, 0.9, 0.8, last_values=last)
    for row in range(3):
        keep = mask[row]
        r, v = rewards[row, keep][None], values[row, keep][None]
        full = torch.ones_like(r, dtype=torch.bool)
        torch.testing.assert_close(returns[row, keep], discounted_returns(r, full, 0.9)[0])
        a, t = gae_advantages(r, v, full, 0.9, 0.8, last_values=last[row : row + 1])
        torch.testing.assert_close(advantages[row, keep], a[0])
        torch.testing.assert_close(targets[row, keep], t[0])
        assert not returns[row, ~keep].any() and not advantages[row, ~keep].any() and not targets[row, ~keep].any()


def test_next_action_values_skip_env_tokens_and_stop_after_the_last_action():
    from agents.functional import next_action_values

    values = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0], [10.0, 20.0, 30.0, 40.0, 50.0]])
    mask = torch.tensor([[1, 0, 0, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)  # row 0: a tool result at 1-2
    expected = [[4.0, 4.0, 4.0, 5.0, 0.0], [20.0, 30.0, 0.0, 0.0, 0.0]]
    torch.testing.assert_close(next_action_values(values, mask), torch.tensor(expected))
