"""Evaluation of a policy on held-out prompts, with error bars: reward, exact KL to the reference, diversity, length.

`evaluate` samples ``samples_per_prompt`` completions of every held-out prompt. The random numbers depend only on
``seed``, the batch index and the position in the batch, so two evaluations with the same seed (before and after
training) draw the same uniforms for the same (prompt, sample): `paired_gain` then compares them pair by pair, and
every standard error treats a prompt (the mean of its completions) as one independent sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch

from agents.evaluation.statistics import MeanWithError, mean_with_error, paired_difference
from agents.functional import exact_kl_from_logits, masked_sum
from agents.policy import LMPolicy
from agents.rollout import RolloutBatch
from textgen_env import TextGenVectorEnv
from textgen_env.generation import generate
from textgen_env.prompts import make_prompt_source

__all__ = [
    "EvalResult",
    "batch_generator",
    "completion_kls",
    "distinct_n",
    "evaluate",
    "gain_summary",
    "generate_completions",
    "paired_gain",
]


def distinct_n(texts: list[str], n: int = 2) -> float:
    """Distinct word n-grams over all texts divided by all n-grams (1.0 = no n-gram repeats anywhere).

    >>> distinct_n(["a b c", "a b d"], 2)
    0.75
    """
    grams = [tuple(words[i : i + n]) for text in texts for words in [text.split()] for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def batch_generator(seed: int, batch_index: int) -> torch.Generator:
    """The generator of one batch: a function of (seed, batch index) only, whatever ran before."""
    state = np.random.SeedSequence([seed, batch_index]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


@torch.no_grad()
def generate_completions(
    policy: LMPolicy,
    env: TextGenVectorEnv,
    prompts: list[str],
    *,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    batch_size: int = 16,
) -> list[tuple[list[int], list[int]]]:
    """Sample one completion per prompt with the env's stop rules (`textgen_env.generation.generate`); returns
    (prompt_ids, completion_ids).

    With `seed`, each batch draws from its own generator seeded by (seed, batch index), so the draws of a batch do
    not depend on how long earlier batches ran (this is what pairs a before and an after evaluation). Otherwise
    `generator` (or torch's global one) is used throughout.
    """
    if getattr(env.config, "tools", ()):  # generate() samples without the env, so it would never run a tool
        raise NotImplementedError(
            "Expected an env without tools for this evaluation (it samples without stepping the env, so tool calls "
            "would not run), got tools; measure with agent.collect(n, temperature=...) on an eval-prompt env instead"
        )
    rules = env.config.stop_rules(policy.tokenizer.eos_token_id)
    results: list[tuple[list[int], list[int]]] = []
    for batch_index, start in enumerate(range(0, len(prompts), batch_size)):
        rng = batch_generator(seed, batch_index) if seed is not None else generator
        chunk = [env.encode_prompt(p) for p in prompts[start : start + batch_size]]
        completions = generate(
            policy.model,
            chunk,
            rules,
            vocab_size=policy.vocab_size,
            temperature=temperature,
            generator=rng,
            decode=lambda ids: cast(str, policy.tokenizer.decode(ids, skip_special_tokens=True)),
            forward_context=policy.autocast,
            hold_finished=False,  # finished rows are fed on, as before: the same kernels, the same numbers
        )
        results.extend((prompt, completion.tokens) for prompt, completion in zip(chunk, completions))
    return results


@dataclass
class EvalResult:
    """Held-out evaluation of a policy: per-completion values and their summaries with standard errors."""

    reward: MeanWithError
    """Mean reward of the completions (the env's reward on finished completions), SE over prompts."""
    kl: MeanWithError
    """Mean over completions of the summed exact per-token KL(policy || reference), in nats, SE over prompts."""
    length: MeanWithError
    """Mean completion length in tokens, SE over prompts."""
    distinct2: float
    """Distinct word bigrams over all completions."""
    num_prompts: int
    """Held-out prompts evaluated."""
    samples_per_prompt: int
    """Completions sampled per prompt."""
    seed: int
    """Seed of the sampling (equal seeds pair two evaluations)."""
    prompt_index: list[int] = field(default_factory=list)
    """Per completion, the index of its prompt."""
    rewards: list[float] = field(default_factory=list)
    """Per completion, its reward."""
    kls: list[float] = field(default_factory=list)
    """Per completion, its summed exact KL (nats)."""
    lengths: list[int] = field(default_factory=list)
    """Per completion, its length in tokens."""
    samples: list[dict[str, object]] = field(default_factory=list)
    """Prompt, completion and reward of each completion."""

    @property
    def reward_mean(self) -> float:
        return self.reward.mean

    @property
    def kl_mean(self) -> float:
        return self.kl.mean

    def to_dict(self) -> dict[str, object]:
        """Everything, JSON-ready (`from_dict` restores it)."""
        return {
            **self.summary(),
            "prompt_index": self.prompt_index,
            "rewards": self.rewards,
            "kls": self.kls,
            "lengths": self.lengths,
            "samples": self.samples,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        """The result `to_dict` described."""
        groups = data["prompt_index"]
        return cls(
            reward=mean_with_error(data["rewards"], groups),
            kl=mean_with_error(data["kls"], groups),
            length=mean_with_error(data["lengths"], groups),
            distinct2=float(data["distinct2"]),
            num_prompts=int(data["num_prompts"]),
            samples_per_prompt=int(data["samples_per_prompt"]),
            seed=int(data["seed"]),
            prompt_index=list(groups),
            rewards=list(data["rewards"]),
            kls=list(data["kls"]),
            lengths=list(data["lengths"]),
            samples=list(data["samples"]),
        )

    def summary(self) -> dict[str, float | int]:
        """The scalars, for reports and JSON."""
        return {
            "reward": self.reward.mean,
            "reward_se": self.reward.se,
            "kl": self.kl.mean,
            "kl_se": self.kl.se,
            "length": self.length.mean,
            "length_se": self.length.se,
            "distinct2": self.distinct2,
            "num_prompts": self.num_prompts,
            "samples_per_prompt": self.samples_per_prompt,
            "completions": len(self.rewards),
            "seed": self.seed,
        }


def evaluate(
    policy: LMPolicy,
    env: TextGenVectorEnv,
    prompts: str | list[str] = "movie_reviews:eval",
    *,
    samples_per_prompt: int = 8,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 32,
) -> EvalResult:
    """Sample `samples_per_prompt` completions of each held-out prompt; score reward, exact KL, length, diversity.

    The KL is that of the sampling policy (logits / temperature) to the reference at the same temperature. The
    forwards run in float32 even for a policy trained with ``bf16_autocast``.
    """
    with policy.float32():
        return _evaluate(policy, env, prompts, samples_per_prompt, temperature, seed, batch_size)


def _evaluate(
    policy: LMPolicy,
    env: TextGenVectorEnv,
    prompts: str | list[str],
    samples_per_prompt: int,
    temperature: float,
    seed: int,
    batch_size: int,
) -> EvalResult:
    if isinstance(samples_per_prompt, bool) or not isinstance(samples_per_prompt, int) or samples_per_prompt < 1:
        raise ValueError(f"Expected samples_per_prompt to be an int >= 1, got {samples_per_prompt!r}")
    source = make_prompt_source(prompts)
    unique = [p.text for p in source.prompts]
    texts = [text for text in unique for _ in range(samples_per_prompt)]
    prompt_index = [i for i in range(len(unique)) for _ in range(samples_per_prompt)]
    references = None
    if env.reward.needs_references:
        references = [p.references for p in source.prompts for _ in range(samples_per_prompt)]
    pairs = generate_completions(policy, env, texts, temperature=temperature, seed=seed, batch_size=batch_size)
    completions = [cast(str, policy.tokenizer.decode(c, skip_special_tokens=True)) for _, c in pairs]
    scores = env.reward.components(texts, completions, [True] * len(texts), references)
    rewards = np.sum(list(scores.values()), axis=0).astype(np.float64)
    kls = completion_kls(policy, pairs, temperature=temperature, batch_size=batch_size)
    lengths = [len(c) for _, c in pairs]
    samples: list[dict[str, object]] = [
        {"prompt": p, "completion": c, "reward": float(r), "kl": float(k)}
        for p, c, r, k in zip(texts, completions, rewards, kls)
    ]
    return EvalResult(
        reward=mean_with_error(rewards, prompt_index),
        kl=mean_with_error(kls, prompt_index),
        length=mean_with_error(lengths, prompt_index),
        distinct2=distinct_n(completions),
        num_prompts=len(unique),
        samples_per_prompt=samples_per_prompt,
        seed=seed,
        prompt_index=prompt_index,
        rewards=rewards.tolist(),
        kls=kls,
        lengths=lengths,
        samples=samples,
    )


def completion_kls(
    policy: LMPolicy, pairs: list[tuple[list[int], list[int]]], *, temperature: float, batch_size: int = 32
) -> list[float]:
    """Per (prompt_ids, completion_ids) pair, the summed exact per-token KL(policy || reference) over its completion
    tokens, both at `temperature`, in nats."""
    kls: list[float] = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        batch = RolloutBatch.from_token_lists(
            [p for p, _ in chunk], [c for _, c in chunk], policy.tokenizer.pad_token_id
        ).to(policy.device)
        with torch.no_grad():
            logits = policy.score(batch, temperature=temperature).logits
            kl = exact_kl_from_logits(logits, policy.reference_logits(batch, temperature=temperature))
        kls.extend(masked_sum(kl, batch.completion_mask, dim=1).tolist())
    return kls


def gain_summary(before: EvalResult, after: EvalResult) -> dict[str, float]:
    """`after`'s summary plus the reference's reward and distinct-2 and the `paired_gain` (mean and SE)."""
    gain = paired_gain(before, after)
    return {
        **after.summary(),
        "reward_before": before.reward.mean,
        "reward_before_se": before.reward.se,
        "gain": gain.mean,
        "gain_se": gain.se,
        "distinct2_before": before.distinct2,
    }


def paired_gain(before: EvalResult, after: EvalResult) -> MeanWithError:
    """Mean reward gain ``after - before`` over completions paired by (prompt, sample), SE over prompts.

    Both evaluations must cover the same prompts with the same samples_per_prompt and seed.
    """
    same = (before.num_prompts, before.samples_per_prompt, before.seed, before.prompt_index) == (
        after.num_prompts,
        after.samples_per_prompt,
        after.seed,
        after.prompt_index,
    )
    if not same:
        raise ValueError(
            "Expected two evaluations of the same prompts, samples_per_prompt and seed, got "
            f"{before.num_prompts} prompts x {before.samples_per_prompt} (seed {before.seed}) and "
            f"{after.num_prompts} prompts x {after.samples_per_prompt} (seed {after.seed})"
        )
    return paired_difference(before.rewards, after.rewards, before.prompt_index)
