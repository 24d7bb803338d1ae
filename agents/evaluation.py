"""Evaluation of a trained policy on held-out prompts: mean reward, exact KL to the reference, distinct bigrams."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from agents.functional import exact_kl_from_logits, masked_sum
from agents.policy import EpisodeTensors, LMPolicy
from agents.sampling import sample_tokens
from textgen_env import TextGenVectorEnv
from textgen_env.prompts import make_prompt_source

__all__ = ["EvalResult", "distinct_n", "evaluate", "generate_completions"]


def distinct_n(texts: list[str], n: int = 2) -> float:
    """Distinct word n-grams over all texts divided by all n-grams (1.0 = no n-gram repeats anywhere).

    >>> distinct_n(["a b c", "a b d"], 2)
    0.75
    """
    grams = [tuple(words[i : i + n]) for text in texts for words in [text.split()] for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _hits_stop_string(tokenizer, completion: list[int], stop_strings: tuple[str, ...]) -> bool:
    """Whether the decoded completion contains a stop string (decoding only when there are stop strings)."""
    if not stop_strings:
        return False
    text = tokenizer.decode(completion, skip_special_tokens=True)
    return any(s in text for s in stop_strings)


@torch.no_grad()
def generate_completions(
    policy: LMPolicy,
    env: TextGenVectorEnv,
    prompts: list[str],
    *,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    batch_size: int = 16,
) -> list[tuple[list[int], list[int]]]:
    """Sample one completion per prompt with the env's stopping rules; returns (prompt_ids, completion_ids)."""
    config, batch_env = env.config, env.batch
    results = []
    for start in range(0, len(prompts), batch_size):
        chunk = [batch_env.prompt_token_ids(p) for p in prompts[start : start + batch_size]]
        cache = policy.rollout_cache(len(chunk))
        completions: list[list[int]] = [[] for _ in chunk]
        done = np.zeros(len(chunk), dtype=bool)
        tokens, restart = [list(p) for p in chunk], [True] * len(chunk)
        while not done.all():
            logits, _ = policy.rollout_step(cache, tokens, restart)
            actions = sample_tokens(logits, temperature=temperature, generator=generator).tolist()
            for i in np.flatnonzero(~done):
                completions[i].append(actions[i])
                done[i] = (
                    len(completions[i]) >= config.max_new_tokens
                    or (config.stop_on_eos and actions[i] == policy.tokenizer.eos_token_id)
                    or _hits_stop_string(policy.tokenizer, completions[i], config.stop_strings)
                )
            tokens, restart = [[a] for a in actions], [False] * len(chunk)
        results.extend(zip(chunk, completions))
    return results


@dataclass
class EvalResult:
    """Held-out evaluation of a policy."""

    reward_mean: float
    """Mean reward of the completions (the env's reward, scored on finished completions)."""
    kl_mean: float
    """Mean over completions of the summed exact per-token KL(policy || reference), in nats."""
    distinct2: float
    """Distinct bigrams over all completions."""
    samples: list[dict[str, object]] = field(default_factory=list)
    """Prompt, completion and reward of each eval episode."""


def evaluate(
    policy: LMPolicy,
    env: TextGenVectorEnv,
    prompts: str | list[str] = "movie_reviews:eval",
    *,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
) -> EvalResult:
    """Generate one completion per held-out prompt and score reward, KL and diversity."""
    source = make_prompt_source(prompts)
    texts = [p.text for p in source.prompts]
    references = [p.references for p in source.prompts] if env.reward.needs_references else None
    generator = torch.Generator().manual_seed(seed)
    pairs = generate_completions(
        policy, env, texts, temperature=temperature, generator=generator, batch_size=batch_size
    )
    completions = [policy.tokenizer.decode(c, skip_special_tokens=True) for _, c in pairs]
    scores = env.reward.components(texts, completions, [True] * len(texts), references)
    rewards = np.sum(list(scores.values()), axis=0)
    kls = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        batch = EpisodeTensors.from_token_lists(
            [p for p, _ in chunk], [c for _, c in chunk], policy.tokenizer.pad_token_id, policy.device
        )
        with torch.no_grad():
            kl = exact_kl_from_logits(policy.score(batch).logits, policy.reference_logits(batch))
        kls.extend(masked_sum(kl, batch.completion_mask, dim=1).tolist())
    samples = [{"prompt": p, "completion": c, "reward": float(r)} for p, c, r in zip(texts, completions, rewards)]
    return EvalResult(float(np.mean(rewards)), float(np.mean(kls)), distinct_n(completions), samples)
