"""How far a 135M offline judge agrees with rewards we can check: VADER sentiment and arithmetic correctness.

Two held-out sets, both fixed by the seed:

* **sentiment**: the `movie_reviews:eval` prompts (never trained on), `--samples` completions each sampled from the
  judge's own model (SmolLM2-135M-Instruct by default, temperature 1, `--max-new-tokens`); the known reward is
  VADER's compound score, the judge's question "Is the reply positive in sentiment?".
* **correctness**: `--questions` constructed questions "What is a + b?" with two replies each, one right and one off
  by 1 to 9; the known reward is correctness, the judge's question "Is the answer to the question correct?".

For each judge mode (``yes_probability``, ``score``) it reports Pearson and Spearman correlations with the known
reward and the pairwise-ranking accuracy within a prompt (pairs of one prompt's completions whose known rewards
differ by at least `--min-gap`; a judge tie counts half), the share GRPO's group ranking would get right. Standard
errors come from a bootstrap over prompts (the unit that was sampled; `--bootstrap` resamples, seeded), n is stated
with each number. Steps are bounded by the item counts, never by time, so the numbers do not depend on load.

    nice -n 10 python benchmarks/judge_agreement.py                   # writes benchmarks/results/judge_agreement.json
    python benchmarks/judge_agreement.py --prompts 8 --samples 2 --questions 10 --output /tmp/j.json  # a smoke run
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from textgen_env import load_model
from textgen_env.generation import LMWriter
from textgen_env.prompts import make_prompt_source
from textgen_env.rewards import JudgeReward, SentimentReward
from textgen_env.storage import atomic_write_json

SENTIMENT_RUBRIC = "Is the reply positive in sentiment?"
CORRECTNESS_RUBRIC = "Is the answer to the question correct?"
MODES = ("yes_probability", "score")


def pairwise_accuracy(judge: np.ndarray, known: np.ndarray, groups: np.ndarray, min_gap: float) -> tuple[float, int]:
    """Share of same-group pairs (known rewards at least `min_gap` apart) that the judge orders as the known reward
    does (judge ties count half), and the number of such pairs."""
    hits, count = 0.0, 0
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        for a_index, a in enumerate(rows):
            for b in rows[a_index + 1 :]:
                gap = known[a] - known[b]
                if abs(gap) < min_gap:
                    continue
                count += 1
                agreement = np.sign(judge[a] - judge[b]) * np.sign(gap)
                hits += 1.0 if agreement > 0 else 0.5 if agreement == 0 else 0.0
    return (hits / count if count else float("nan")), count


def _correlations(judge: np.ndarray, known: np.ndarray) -> dict[str, float]:
    if np.ptp(judge) == 0 or np.ptp(known) == 0:
        return {"pearson": float("nan"), "spearman": float("nan")}
    return {"pearson": float(stats.pearsonr(judge, known)[0]), "spearman": float(stats.spearmanr(judge, known)[0])}


def agreement(
    judge: np.ndarray, known: np.ndarray, groups: np.ndarray, *, min_gap: float, resamples: int, seed: int
) -> dict[str, Any]:
    """The metrics on all items, each with a bootstrap-over-groups standard error."""

    def metrics(rows: np.ndarray, relabel: np.ndarray) -> dict[str, float]:
        accuracy, _ = pairwise_accuracy(judge[rows], known[rows], relabel, min_gap)
        return {**_correlations(judge[rows], known[rows]), "pairwise_accuracy": accuracy}

    point = metrics(np.arange(len(judge)), groups)
    _, pairs = pairwise_accuracy(judge, known, groups, min_gap)
    unique = np.unique(groups)
    members = {group: np.flatnonzero(groups == group) for group in unique}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {key: [] for key in point}
    for _ in range(resamples):
        chosen = rng.choice(unique, size=len(unique), replace=True)
        rows = np.concatenate([members[g] for g in chosen])
        relabel = np.concatenate([np.full(len(members[g]), i) for i, g in enumerate(chosen)])  # a repeat is new
        for key, value in metrics(rows, relabel).items():
            draws[key].append(value)
    result: dict[str, Any] = {"items": len(judge), "prompts": len(unique), "pairs": pairs}
    for key, value in point.items():
        finite = np.array([v for v in draws[key] if np.isfinite(v)])
        result[key] = value
        result[f"{key}_se"] = float(finite.std(ddof=1)) if len(finite) > 1 else float("nan")
    return result


def sentiment_items(model: Any, tokenizer: Any, prompts: int, samples: int, max_new_tokens: int, seed: int) -> dict:
    """Held-out review openings, `samples` sampled completions each, and their VADER scores."""
    texts = [p.text for p in make_prompt_source("movie_reviews:eval").prompts][:prompts]
    rows = [text for text in texts for _ in range(samples)]
    writer = LMWriter(model, tokenizer, temperature=1.0)
    completions: list[str] = []
    for start in range(0, len(rows), 16):
        chunk = rows[start : start + 16]
        generators = [torch.Generator().manual_seed(seed * 100_003 + start + i) for i in range(len(chunk))]
        completions += writer.sample([tokenizer(t)["input_ids"] for t in chunk], max_new_tokens, generators)
    known = SentimentReward()(rows, completions, [True] * len(rows))
    return {
        "prompts": rows,
        "completions": completions,
        "known": known,
        "groups": np.repeat(np.arange(len(texts)), samples),
    }


def correctness_items(questions: int, seed: int) -> dict:
    """`questions` sums, each with a right reply and one off by 1..9 (order shuffled), and 1/0 correctness."""
    rng = np.random.default_rng(seed)
    prompts, completions, known, groups = [], [], [], []
    for index in range(questions):
        a, b = (int(x) for x in rng.integers(2, 50, size=2))
        wrong = a + b + int(rng.choice([-1, 1])) * int(rng.integers(1, 10))
        replies = [(f"The answer is {a + b}.", 1.0), (f"The answer is {wrong}.", 0.0)]
        rng.shuffle(replies)  # type: ignore[arg-type]  # a list of tuples shuffles in place
        for reply, correct in replies:
            prompts.append(f"What is {a} + {b}?")
            completions.append(reply)
            known.append(correct)
            groups.append(index)
    return {"prompts": prompts, "completions": completions, "known": np.array(known), "groups": np.array(groups)}


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    model, tokenizer = load_model(args.model)
    started = time.perf_counter()
    sets = {
        "sentiment": (
            SENTIMENT_RUBRIC,
            "VADER compound of the completion",
            sentiment_items(model, tokenizer, args.prompts, args.samples, args.max_new_tokens, args.seed),
            args.min_gap,
        ),
        "correctness": (
            CORRECTNESS_RUBRIC,
            "1 if the stated sum is right",
            correctness_items(args.questions, args.seed),
            0.5,
        ),
    }
    log(f"items ready in {time.perf_counter() - started:.0f} s")
    results: dict[str, Any] = {}
    for name, (rubric, known_reward, items, min_gap) in sets.items():
        results[name] = {"rubric": rubric, "known_reward": known_reward, "min_gap": min_gap, "modes": {}}
        for mode in MODES:
            judge = JudgeReward(rubric, model=model, tokenizer=tokenizer, mode=mode, batch_size=args.batch_size)
            scores = judge(items["prompts"], items["completions"], [True] * len(items["prompts"]))
            row = agreement(
                scores, items["known"], items["groups"], min_gap=min_gap, resamples=args.bootstrap, seed=args.seed
            )
            row["judge_mean"], row["judge_std"] = float(scores.mean()), float(scores.std())
            if mode == "score":
                row["unparsed_answers"] = judge.unparsed
            results[name]["modes"][mode] = row
            log(f"{name} / {mode}: " + ", ".join(f"{k}={v:.3f}" for k, v in row.items() if isinstance(v, float)))
        results[name]["examples"] = [
            {"prompt": p, "completion": c, "known": float(k)}
            for p, c, k in list(zip(items["prompts"], items["completions"], items["known"]))[:4]
        ]
    return {
        "judge_model": args.model or "SmolLM2-135M-Instruct",
        "settings": {key: value for key, value in vars(args).items() if key != "output"},
        "sets": results,
        "seconds_under_load": time.perf_counter() - started,
        "note": "wall time measured on a shared 2-core machine under load; not a speed claim",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="judge and sampler model (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--prompts", type=int, default=40, help="held-out review prompts (at most 40)")
    parser.add_argument("--samples", type=int, default=4, help="sampled completions per review prompt")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--questions", type=int, default=100, help="arithmetic questions (2 replies each)")
    parser.add_argument("--min-gap", type=float, default=0.2, help="smallest VADER gap of a judged sentiment pair")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples over prompts")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 suits a shared machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "judge_agreement.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    atomic_write_json(args.output, run(args))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
