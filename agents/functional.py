"""Pure tensor math for the agents: log-probs, masked statistics, returns and advantages, KL terms and PPO losses."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "clipped_policy_loss",
    "clipped_value_loss",
    "discounted_returns",
    "entropy_from_logits",
    "exact_kl_from_logits",
    "gae_advantages",
    "group_relative_advantages",
    "grouped_relative_advantages",
    "kl_k1",
    "kl_k2",
    "kl_k3",
    "kl_penalized_rewards",
    "kl_to_go",
    "last_action_columns",
    "leave_one_out_advantages",
    "leave_one_out_baseline",
    "masked_mean",
    "masked_sum",
    "masked_var",
    "masked_whiten",
    "next_action_values",
    "selective_log_softmax",
]


# Checks and helpers
def _check_same_shape(**tensors: Tensor) -> None:
    shapes = {name: tuple(tensor.shape) for name, tensor in tensors.items()}
    if len(set(shapes.values())) > 1:
        names = list(shapes)
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"Expected {', '.join(names[:-1])} and {names[-1]} to have the same shape, got {listed}")


def _check_2d(name: str, tensor: Tensor) -> None:
    if tensor.dim() != 2:
        raise ValueError(f"Expected {name} to be 2-D (B, T), got shape {tuple(tensor.shape)}")


def _check_number(name: str, value: Any, low: float, high: float = math.inf, low_inclusive: bool = False) -> None:
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not is_number or not (value >= low if low_inclusive else value > low) or value > high:
        kind = "a non-negative number" if low_inclusive else "a positive number"
        expected = kind if high == math.inf else f"a number in [{low:g}, {high:g}]"
        raise ValueError(f"Expected {name} to be {expected}, got {value!r}")


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Sums and exponentials in half precision lose too much: compute in float32 unless the input is float64."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _rowwise(fn: Callable[..., Tensor], *tensors: Tensor) -> Tensor:
    """Apply ``fn`` to one slice along dim 0 at a time, so (..., V) temporaries never exceed one slice."""
    if tensors[0].dim() < 2 or tensors[0].shape[0] <= 1:
        return fn(*tensors)
    return torch.stack([fn(*rows) for rows in zip(*(tensor.unbind(0) for tensor in tensors))])


def _finite_log_probs(logits: Tensor, dtype: torch.dtype) -> Tensor:
    """log_softmax with -inf (banned tokens) clamped to the dtype's minimum: p * log p is then 0, not NaN."""
    return torch.log_softmax(logits.to(dtype), dim=-1).clamp(min=torch.finfo(dtype).min)


# Log-probabilities and entropy
def selective_log_softmax(logits: Tensor, index: Tensor) -> Tensor:
    """``log_softmax(logits)`` (..., V) gathered at integer ``index`` (...) -> (...), in ``logits.dtype``.

    Memory-lean: normalises one slice of dim 0 at a time (in float32 for half precision), never a full log-softmax.
    """
    if index.shape != logits.shape[:-1]:
        raise ValueError(
            f"Expected index shape to equal logits shape without the vocabulary dim, "
            f"got logits {tuple(logits.shape)} and index {tuple(index.shape)}"
        )
    if index.dtype.is_floating_point or index.dtype.is_complex or index.dtype == torch.bool:
        raise TypeError(f"Expected index to be an integer tensor, got {index.dtype}")
    compute = _compute_dtype(logits.dtype)
    selected = logits.gather(-1, index.unsqueeze(-1)).squeeze(-1).to(compute)  # (...)
    normalizer = _rowwise(lambda rows: torch.logsumexp(rows.to(compute), dim=-1), logits)  # (...)
    return (selected - normalizer).to(logits.dtype)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy ``-sum_v p log p`` of ``softmax(logits)``: (..., V) -> (...), in ``logits.dtype``."""
    compute = _compute_dtype(logits.dtype)

    def row_entropy(rows: Tensor) -> Tensor:
        log_probs = _finite_log_probs(rows, compute)  # (..., V)
        return -(log_probs.exp() * log_probs).sum(dim=-1)

    return _rowwise(row_entropy, logits).to(logits.dtype)


# Masked statistics (mask: bool, or 0/1 float; nonzero means valid)
def masked_sum(values: Tensor, mask: Tensor, dim: int | tuple[int, ...] | None = None) -> Tensor:
    """Sum of ``values`` where ``mask`` is set, over ``dim`` (all dims if None). NaN in masked-out slots is ignored."""
    _check_same_shape(values=values, mask=mask)
    compute = _compute_dtype(values.dtype)
    kept = torch.where(mask.bool(), values.to(compute), 0.0)
    return kept.sum(dim=dim).to(values.dtype)


def masked_mean(values: Tensor, mask: Tensor, dim: int | tuple[int, ...] | None = None) -> Tensor:
    """Mean of ``values`` where ``mask`` is set, over ``dim`` (all dims if None); 0 where nothing is valid."""
    _check_same_shape(values=values, mask=mask)
    compute = _compute_dtype(values.dtype)
    valid = mask.bool()
    kept = torch.where(valid, values.to(compute), 0.0)
    count = valid.sum(dim=dim).clamp(min=1).to(compute)
    return (kept.sum(dim=dim) / count).to(values.dtype)


def masked_var(values: Tensor, mask: Tensor, unbiased: bool = True) -> Tensor:
    """Variance of the valid entries (scalar); 0 when fewer than two (unbiased) or no (biased) entries are valid."""
    _check_same_shape(values=values, mask=mask)
    dtype, compute = values.dtype, _compute_dtype(values.dtype)
    values = values.to(compute)
    centered = values - masked_mean(values, mask)
    variance = masked_mean(centered**2, mask)
    if unbiased:
        count = mask.bool().sum().to(compute)
        # Bessel's correction without a host sync; a single valid entry has zero centered value anyway
        variance = variance * count / (count - 1).clamp(min=1)
    return variance.to(dtype)


def masked_whiten(values: Tensor, mask: Tensor, shift_mean: bool = True) -> Tensor:
    """Normalise the valid entries to unit variance (and zero mean if ``shift_mean``); masked-out entries are 0."""
    _check_same_shape(values=values, mask=mask)
    values_c = values.to(_compute_dtype(values.dtype))
    mean, variance = masked_mean(values_c, mask), masked_var(values_c, mask)
    whitened = (values_c - mean) * torch.rsqrt(variance + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return torch.where(mask.bool(), whitened, 0.0).to(values.dtype)


# Returns and advantages (B, T) with right padding
def discounted_returns(rewards: Tensor, mask: Tensor, gamma: float) -> Tensor:
    """Return-to-go ``G_t = r_t + gamma * G_{t+1}`` of right-padded episodes that end at their last valid step.

    ``rewards`` and ``mask`` are (B, T), mask 1 on valid steps and 0 after the end; returns (B, T), 0 on padding.
    Masked-out steps inside an episode (env-inserted tokens, such as tool results) are skipped: ``G_{t+1}`` is the
    return of the next valid step, exactly as if the masked steps were removed.
    """
    _check_same_shape(rewards=rewards, mask=mask)
    _check_2d("rewards", rewards)
    _check_number("gamma", gamma, 0.0, 1.0, low_inclusive=True)
    compute = _compute_dtype(rewards.dtype)
    valid = mask.bool()
    rewards_c = torch.where(valid, rewards.to(compute), 0.0)  # (B, T)
    returns = torch.zeros_like(rewards_c)  # (B, T)
    running = rewards_c.new_zeros(rewards.shape[0])  # (B,) return of step t + 1; 0 past the end
    for t in reversed(range(rewards.shape[1])):
        running = torch.where(valid[:, t], rewards_c[:, t] + gamma * running, running)  # a hole carries it
        returns[:, t] = torch.where(valid[:, t], running, 0.0)
    return returns.to(rewards.dtype)


@torch.no_grad()
def gae_advantages(
    rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float, last_values: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016) over right-padded episodes; no gradient flows.

    Args:
        rewards: (B, T) per-step rewards.
        values: (B, T) value estimates ``V(s_t)``.
        mask: (B, T) 1 on valid steps, 0 after the end of the episode; masked-out steps inside an episode
            (env-inserted tokens) are skipped, as if removed: the next state's value is the next valid step's.
        gamma: discount in [0, 1].
        lam: GAE lambda in [0, 1]; 1 gives Monte Carlo returns minus values, 0 gives one-step TD errors.
        last_values: (B,) values of the state after each row's last valid step, for episodes cut by the rollout.
            None: every episode is terminal (bootstrap from 0). Put 0 in rows that did terminate.

    Returns:
        ``(advantages, returns)``, both (B, T) with ``returns = advantages + values``, 0 on padded steps.
    """
    _check_same_shape(rewards=rewards, values=values, mask=mask)
    _check_2d("rewards", rewards)
    _check_number("gamma", gamma, 0.0, 1.0, low_inclusive=True)
    _check_number("lam", lam, 0.0, 1.0, low_inclusive=True)
    batch = rewards.shape[0]
    if last_values is not None and tuple(last_values.shape) != (batch,):
        raise ValueError(
            f"Expected last_values to have shape (B,) = ({batch},), got rewards {tuple(rewards.shape)} "
            f"and last_values {tuple(last_values.shape)}"
        )
    out_dtype = torch.promote_types(rewards.dtype, values.dtype)
    compute = _compute_dtype(out_dtype)
    valid = mask.bool()
    rewards_c = torch.where(valid, rewards.to(compute), 0.0)  # (B, T)
    values_c = torch.where(valid, values.to(compute), 0.0)  # (B, T)

    # after the last valid step the next value is the bootstrap; across a hole, the next valid step's value
    next_value = values_c.new_zeros(batch) if last_values is None else last_values.to(compute)  # (B,)
    advantages = torch.zeros_like(rewards_c)  # (B, T)
    running = rewards_c.new_zeros(batch)  # (B,) advantage of the next valid step; 0 past the end
    for t in reversed(range(rewards.shape[1])):
        step = valid[:, t]
        delta = rewards_c[:, t] + gamma * next_value - values_c[:, t]  # (B,) TD error
        running = torch.where(step, delta + gamma * lam * running, running)
        advantages[:, t] = torch.where(step, running, 0.0)
        next_value = torch.where(step, values_c[:, t], next_value)
    returns = torch.where(valid, advantages + values_c, 0.0)  # (B, T)
    return advantages.to(out_dtype), returns.to(out_dtype)


def _grouped(scores: Tensor, group_size: int, min_size: int = 1) -> Tensor:
    if scores.dim() != 1:
        raise ValueError(f"Expected scores to be 1-D (N,), got shape {tuple(scores.shape)}")
    if not isinstance(group_size, int) or isinstance(group_size, bool) or group_size < min_size:
        raise ValueError(f"Expected group_size to be an integer >= {min_size}, got {group_size!r}")
    if scores.shape[0] % group_size != 0:
        raise ValueError(
            f"Expected the number of scores ({scores.shape[0]}) to be a multiple of group_size ({group_size})"
        )
    return scores.to(_compute_dtype(scores.dtype)).view(-1, group_size)  # (num_groups, group_size)


def group_relative_advantages(scores: Tensor, group_size: int, normalize_std: bool = True, eps: float = 1e-4) -> Tensor:
    """GRPO advantages: each score minus its group's mean, divided by the group's std (+ eps) if ``normalize_std``.

    ``scores`` is (N,) with N = num_groups * group_size; consecutive entries are completions of one prompt.
    The std is the unbiased one (0 for groups of one). Returns (N,); `grouped_relative_advantages` with
    ``group_ids = arange(N) // group_size``.
    """
    _grouped(scores, group_size)  # checks the shapes
    ids = torch.arange(scores.shape[0], device=scores.device) // group_size  # (N,)
    return grouped_relative_advantages(scores, ids, normalize_std=normalize_std, eps=eps)


def grouped_relative_advantages(
    scores: Tensor, group_ids: Tensor, normalize_std: bool = True, eps: float = 1e-4
) -> Tensor:
    """GRPO advantages over groups of any sizes: each score minus the mean of the scores with its group id, divided
    by their unbiased std (+ eps) if ``normalize_std``. A group of one gets 0. (N,) scores and ids -> (N,)."""
    _check_same_shape(scores=scores, group_ids=group_ids)
    if scores.dim() != 1 or group_ids.dtype.is_floating_point or group_ids.dtype == torch.bool:
        raise ValueError(
            f"Expected 1-D scores and integer group_ids, got shape {tuple(scores.shape)} and {group_ids.dtype}"
        )
    _check_number("eps", eps, 0.0, low_inclusive=True)
    values = scores.to(_compute_dtype(scores.dtype))  # (N,)
    _, group, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)  # (N,), (G,)
    order = torch.argsort(group, stable=True)  # (N,) the members of a group side by side, in their order
    sizes = counts[group[order]]  # (N,) the size of each sorted entry's group
    advantages = torch.empty_like(values)
    for size in counts.unique().tolist():  # the groups of one size as rows: the dense formula, as for a fixed size
        members = order[sizes == size]  # (G_size * size,)
        rows = values[members].view(-1, size)  # (G_size, size)
        centered = rows - rows.mean(dim=1, keepdim=True)
        if normalize_std:
            centered = centered / (rows.std(dim=1, keepdim=True, correction=1 if size > 1 else 0) + eps)
        advantages[members] = centered.reshape(-1)
    return advantages.to(scores.dtype)


def leave_one_out_advantages(scores: Tensor, group_size: int) -> Tensor:
    """RLOO advantages (Ahmadian et al. 2024): each score minus the mean of the other members of its group. (N,)."""
    grouped = _grouped(scores, group_size, min_size=2)  # (G, S)
    others_mean = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)  # (G, S)
    return (grouped - others_mean).reshape(-1).to(scores.dtype)


# KL divergence to a reference policy
def kl_k1(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Per-token k1 estimator ``log p - log q`` of KL(p || q): unbiased, high variance, can be negative."""
    _check_same_shape(logp=logp, ref_logp=ref_logp)
    return logp - ref_logp


def kl_k2(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Per-token k2 estimator ``0.5 * (log p - log q)**2``: biased, low variance, non-negative."""
    _check_same_shape(logp=logp, ref_logp=ref_logp)
    return 0.5 * (logp - ref_logp) ** 2


def kl_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Per-token k3 estimator ``q/p - log(q/p) - 1`` (Schulman 2020): unbiased for tokens sampled from p, >= 0."""
    _check_same_shape(logp=logp, ref_logp=ref_logp)
    log_ratio = ref_logp - logp
    return torch.expm1(log_ratio) - log_ratio  # expm1 keeps precision when the policies are close


def kl_to_go(kl: Tensor, mask: Tensor) -> Tensor:
    """(B, T) ``sum_{t' > t} kl_t'``: each token's KL still to come in its episode (0 on padding).

    The score-function part of grad KL(whole completion): ``E[sum_t grad log pi(a_t|s_t) * kl_to_go_t]`` charges
    an action for the KL of the states it leads to (the per-state KL at s_t does not depend on a_t).
    """
    _check_same_shape(kl=kl, mask=mask)
    _check_2d("kl", kl)
    valid = mask.bool()
    kept = torch.where(valid, kl.to(_compute_dtype(kl.dtype)), 0.0)  # (B, T)
    after = kept.flip(1).cumsum(1).flip(1) - kept  # (B, T) sum over t' >= t, minus t itself
    return torch.where(valid, after, 0.0).to(kl.dtype)


def leave_one_out_baseline(values: Tensor, mask: Tensor, group_ids: Tensor) -> Tensor:
    """(B, T) for each token, the mean of ``values`` at the same position over the *other* episodes of its group
    that are still running there (0 where none is). Subtracted from a per-token return such as `kl_to_go`, it cuts
    the variance without bias: the other episodes are independent draws, so the baseline does not depend on this
    episode's actions (the leave-one-out form of Kool et al. 2019 / RLOO, per position). (B, T), (B, T), (B,)."""
    _check_same_shape(values=values, mask=mask)
    _check_2d("values", values)
    if group_ids.shape != values.shape[:1] or group_ids.dtype.is_floating_point or group_ids.dtype == torch.bool:
        raise ValueError(
            f"Expected integer group_ids of shape ({values.shape[0]},), got {group_ids.dtype} {tuple(group_ids.shape)}"
        )
    dtype = _compute_dtype(values.dtype)
    valid = mask.bool().to(dtype)  # (B, T)
    kept = torch.where(mask.bool(), values.to(dtype), 0.0)  # (B, T)
    _, group = torch.unique(group_ids, return_inverse=True)  # (B,)
    one_hot = torch.nn.functional.one_hot(group).to(dtype)  # (B, G)
    others_sum = (one_hot @ (one_hot.T @ kept)) - kept  # (B, T) the group's sum at t, less the episode itself
    others_count = (one_hot @ (one_hot.T @ valid)) - valid  # (B, T)
    baseline = torch.where(others_count > 0, others_sum / others_count.clamp(min=1), 0.0)
    return torch.where(mask.bool(), baseline, 0.0).to(values.dtype)


def next_action_values(values: Tensor, mask: Tensor) -> Tensor:
    """(B, T) for each column t, ``values`` at the next action column after t (``mask`` True), 0 where none follows.

    The bootstrap of a TD target: the state after action t is the one the next action is taken in, past any
    env-inserted tokens (a tool result) between them; after the episode's last action there is nothing to add.
    """
    _check_same_shape(values=values, mask=mask)
    _check_2d("values", values)
    width = values.shape[1]
    columns = torch.arange(width, device=values.device).expand_as(values)  # (B, T)
    candidates = torch.where(mask.bool(), columns, width)  # (B, T) an action's own column, T elsewhere
    # the first action column at or after t, by a reverse running minimum; then shifted to "strictly after t"
    at_or_after = candidates.flip(1).cummin(1).values.flip(1)  # (B, T)
    after = torch.full_like(at_or_after, width)
    after[:, :-1] = at_or_after[:, 1:]
    found = after < width
    gathered = values.gather(1, after.clamp(max=width - 1))  # (B, T)
    return torch.where(found, gathered, torch.zeros_like(gathered))


def last_action_columns(mask: Tensor) -> Tensor:
    """(B,) int64 the column of each row's last True in `mask` (B, T); 0 for a row without any."""
    _check_2d("mask", mask)
    columns = torch.arange(mask.shape[1], device=mask.device).expand(mask.shape)
    return torch.where(mask.bool(), columns, 0).amax(dim=1)


def kl_penalized_rewards(rewards: Tensor, logp: Tensor, ref_logp: Tensor, mask: Tensor, kl_coef: float) -> Tensor:
    """Per-token rewards ``r_t - kl_coef * (log pi(a_t|s_t) - log ref(a_t|s_t))``, 0 on padding. All (B, T).

    The sampled k1 term makes the penalty depend on the action, so a policy gradient on these rewards follows
    ``grad E[sum_t r_t] - kl_coef * grad KL(pi || ref)`` of whole sequences: the term pulls pi toward ref. The exact
    per-token KL of a state, subtracted instead, is the same for every action of that state and cancels out of the
    policy gradient (in expectation it only shifts the baseline).
    """
    _check_same_shape(rewards=rewards, logp=logp, ref_logp=ref_logp, mask=mask)
    _check_number("kl_coef", kl_coef, 0.0, low_inclusive=True)
    return torch.where(mask.bool(), rewards - kl_coef * kl_k1(logp, ref_logp), 0.0)


def exact_kl_from_logits(logits: Tensor, ref_logits: Tensor) -> Tensor:
    """Exact KL(p || q) ``sum_v p log(p/q)`` with p = softmax(logits), q = softmax(ref_logits): (..., V) -> (...)."""
    _check_same_shape(logits=logits, ref_logits=ref_logits)
    compute = _compute_dtype(torch.promote_types(logits.dtype, ref_logits.dtype))

    def row_kl(rows: Tensor, ref_rows: Tensor) -> Tensor:
        log_p = _finite_log_probs(rows, compute)  # (..., V)
        log_q = _finite_log_probs(ref_rows, compute)  # (..., V)
        p = log_p.exp()
        # The gradient of sum(p) is 0 in theory but rounding noise (~1e-8) in practice, and Adam scales noise up to
        # full-size steps: subtracting it (with value 0) makes the gradient at policy == reference exactly 0.
        total = p.sum(dim=-1)
        return (p * (log_p - log_q)).sum(dim=-1) - (total - total.detach())

    return _rowwise(row_kl, logits, ref_logits).to(logits.dtype)


# PPO losses
def clipped_policy_loss(
    logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, clip_range: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO clipped surrogate loss (Schulman et al. 2017), the masked mean over valid tokens.

    ``logp`` (current policy, with gradient), ``old_logp`` (rollout policy), ``advantages`` (per token: expand
    sequence-level ones first) and ``mask`` are (B, T); the ratio is clipped to [1 - clip_range, 1 + clip_range].
    Returns ``(loss, stats)``: the scalar loss and detached ``approx_kl`` (k3 estimate of KL(old || new)) and
    ``clip_fraction`` (share of valid tokens whose ratio lies outside the clip range).
    """
    _check_same_shape(logp=logp, old_logp=old_logp, advantages=advantages, mask=mask)
    _check_number("clip_range", clip_range, 0.0)
    valid = mask.bool()
    # zero the log-ratio on padding: exp of garbage there could overflow and turn the gradient into NaN
    log_ratio = torch.where(valid, logp - old_logp, 0.0)  # (B, T)
    ratio = log_ratio.exp()  # (B, T)
    advantages = torch.where(valid, advantages, 0.0)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), valid)
    with torch.no_grad():
        approx_kl = masked_mean(torch.expm1(log_ratio) - log_ratio, valid)  # kl_k3(old_logp, logp)
        clip_fraction = masked_mean(((ratio - 1.0).abs() > clip_range).to(ratio.dtype), valid)
    return loss, {"approx_kl": approx_kl, "clip_fraction": clip_fraction}


def clipped_value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, clip_range: float | None
) -> Tensor:
    """Value loss ``0.5 * max((V - R)^2, (V_clipped - R)^2)``, the masked mean; ``0.5 * MSE`` if ``clip_range`` is None.

    ``V_clipped = old_values + clamp(values - old_values, -clip_range, clip_range)``. All inputs (B, T).
    """
    _check_same_shape(values=values, old_values=old_values, returns=returns, mask=mask)
    if clip_range is not None:
        _check_number("clip_range", clip_range, 0.0)
    valid = mask.bool()
    errors = torch.where(valid, values - returns, 0.0) ** 2  # (B, T)
    if clip_range is not None:
        clipped = old_values + (values - old_values).clamp(-clip_range, clip_range)  # (B, T)
        errors = torch.maximum(errors, torch.where(valid, clipped - returns, 0.0) ** 2)
    return 0.5 * masked_mean(errors, valid)
