"""One no-grad pass over a rollout: the rollout policy's log-probs, values and the KL terms to the reference."""

from __future__ import annotations

import numpy as np
import torch

from agents.base import Agent, Rollout
from agents.functional import exact_kl_from_logits, selective_log_softmax

__all__ = ["score_rollout"]


@torch.no_grad()
def score_rollout(agent: Agent, rollout: Rollout, *, need_kl: bool) -> dict[str, torch.Tensor]:
    """Score every episode of `rollout` once, at the agent's sampling temperature.

    Returns (n, T) float tensors, 0 on padding: ``logprobs`` (log pi(a_t|s_t) of the chosen tokens), ``values``
    (zeros without a value head), ``ref_logprobs`` (log ref(a_t|s_t)) and ``kl`` (the exact per-token
    KL(pi(.|s_t) || ref(.|s_t))), both zeros when `need_kl` is False, and the bool completion ``mask``.
    """
    n = len(rollout.episodes)
    width = max(len(e.completion_ids) for e in rollout.episodes)
    keys = ("logprobs", "values", "ref_logprobs", "kl")
    out = {key: torch.zeros((n, width)) for key in keys}
    out["mask"] = torch.zeros((n, width), dtype=torch.bool)
    pad, device = agent.policy.tokenizer.pad_token_id, agent.policy.device
    temperature = agent.config.temperature
    for start in range(0, n, agent.config.minibatch_size):
        rows = np.arange(start, min(n, start + agent.config.minibatch_size))
        batch = rollout.batch(rows, pad, device)
        scored = agent.policy.score(batch, temperature=temperature)
        t = batch.completion_mask.shape[1]
        out["logprobs"][rows, :t] = selective_log_softmax(scored.logits, batch.actions).cpu()
        if scored.values is not None:
            out["values"][rows, :t] = scored.values.float().cpu()
        if need_kl:
            ref_logits = agent.policy.reference_logits(batch, temperature=temperature)
            out["ref_logprobs"][rows, :t] = selective_log_softmax(ref_logits, batch.actions).cpu()
            out["kl"][rows, :t] = exact_kl_from_logits(scored.logits, ref_logits).cpu()
        out["mask"][rows, :t] = batch.completion_mask.cpu()
    for key in keys:
        out[key] = out[key] * out["mask"]
    return out
