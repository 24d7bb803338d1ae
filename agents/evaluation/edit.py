"""Held-out evaluation of an edit agent on TextEdit-v0: the score gain of each edited draft, the exact KL of the
candidate policy to the untrained one, edits made, with standard errors.

Each held-out draft is edited `samples_per_draft` times, the agent sampling (seeded per evaluation, so two
evaluations with the same seed pair up in `agents.evaluation.paired_gain`); the "reward" of an episode is
``score(final text) - score(draft)`` under the env's reward, the draft being the prompt. The KL of an episode is the
sum over its steps of ``KL(pi(. | s) || pi_ref(. | s))`` over the step's candidates, where pi_ref is the same
candidate-scoring policy on the env's own (untrained) model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from agents.edit import EditReinforce, candidate_logits
from agents.evaluation.statistics import mean_with_error
from agents.evaluation.textgen import EvalResult, distinct_n
from agents.policy import LMPolicy

__all__ = ["evaluate_edit"]


@torch.no_grad()
def evaluate_edit(
    agent: EditReinforce, env: Any, drafts: list[str], *, samples_per_draft: int = 2, seed: int = 0
) -> EvalResult:
    """Edit each of `drafts` `samples_per_draft` times in `env` (a ``TextEditVectorEnv``) with `agent`'s policy.

    Returns an `EvalResult` whose prompts are the drafts: ``reward`` is the score gain of the finished text over its
    draft, ``kl`` the summed exact KL of the candidate policy to the untrained one, ``length`` the edits made; the
    SEs are over drafts. The agent's generator is restored afterwards, so evaluating never changes training.
    """
    if isinstance(samples_per_draft, bool) or not isinstance(samples_per_draft, int) or samples_per_draft < 1:
        raise ValueError(f"Expected samples_per_draft to be an int >= 1, got {samples_per_draft!r}")
    if not drafts:
        raise ValueError("Expected at least one held-out draft, got none")
    reference = LMPolicy(env.loaded_model, env.tokenizer, value_head=False)
    jobs = [(d, s) for d in range(len(drafts)) for s in range(samples_per_draft)]
    saved_generator = agent.generator
    agent.generator = torch.Generator().manual_seed(seed)
    gains: list[float] = []
    kls: list[float] = []
    lengths: list[int] = []
    finals: list[str] = []
    samples: list[dict[str, object]] = []
    n = env.num_envs
    try:
        with agent.policy.float32():
            for start in range(0, len(jobs), n):
                chunk = jobs[start : start + n]
                chosen = [drafts[d] for d, _ in chunk] + [drafts[chunk[-1][0]]] * (n - len(chunk))  # pad the round
                seeds = [seed * 1_000_003 + start + i for i in range(n)]
                obs, info = env.reset(seed=seeds, options={"draft": chosen})
                active = np.zeros(n, dtype=bool)
                active[: len(chunk)] = True
                kl = np.zeros(n)
                edits = np.zeros(n, dtype=int)
                texts = list(info["text"])
                while active.any():
                    logits = candidate_logits(agent.policy, obs, agent.config).cpu()  # (N, K+1)
                    ref = candidate_logits(reference, obs, agent.config).cpu()
                    logp, ref_logp = torch.log_softmax(logits, 1), torch.log_softmax(ref, 1)
                    step_kl = torch.where(torch.isinf(logits), 0.0, logp.exp() * (logp - ref_logp)).sum(1)  # (N,)
                    actions = torch.multinomial(logp.exp(), 1, generator=agent.generator)[:, 0].numpy()
                    actions[~active] = 0
                    kl[active] += step_kl.numpy()[active]
                    obs, _, terminated, truncated, info = env.step_unfinished(actions)
                    for i in np.flatnonzero(active).tolist():
                        texts[int(i)] = str(info["text"][i])
                        edits[i] += int(actions[i] != 0)
                    active &= ~(terminated | truncated)
                pairs = [t for i in range(len(chunk)) for t in (chosen[i], texts[i])]  # draft, final, draft, ...
                scores = env.reward([""] * len(pairs), pairs, [True] * len(pairs))
                for i, (d, _) in enumerate(chunk):
                    gain = float(scores[2 * i + 1] - scores[2 * i])
                    gains.append(gain)
                    kls.append(float(kl[i]))
                    lengths.append(int(edits[i]))
                    finals.append(texts[i])
                    samples.append({"draft": drafts[d], "text": texts[i], "gain": gain})
    finally:
        agent.generator = saved_generator
    index = [d for d, _ in jobs]
    return EvalResult(
        reward=mean_with_error(gains, index),
        kl=mean_with_error(kls, index),
        length=mean_with_error(lengths, index),
        distinct2=distinct_n(finals),
        num_prompts=len(drafts),
        samples_per_prompt=samples_per_draft,
        seed=seed,
        prompt_index=index,
        rewards=gains,
        kls=kls,
        lengths=lengths,
        samples=samples,
    )
