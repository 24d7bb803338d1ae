"""sb3-contrib's MaskablePPO edits drafts on TextEdit-v0 and is measured against no-edit and random-edit baselines.

The reward is VADER sentiment of the whole text (``reward="sentiment"``, dense: each edit pays the change in score,
minus ``edit_cost``). MaskablePPO with `agents.sb3.edit.EditCandidateExtractor` trains on the built-in ``drafts``
(train split) and is evaluated on the 15 held-out ``drafts:eval`` drafts, each edited from several env seeds. The
gain of an episode is score(final text) - score(draft); no editing gains exactly 0. The standard error takes each
draft (the mean over its seeds) as one sample, n = 15.

Offline on the tiny test model in a few minutes (needs ``pip install sb3-contrib vaderSentiment``)::

    python examples/edit_maskable_ppo.py [--timesteps 20000] [--default-model] [--output result.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np
from gymnasium.error import DependencyNotInstalled
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.sb3.edit import EditCandidateExtractor
from textgen_env import load_model
from textgen_env.edit import TextEditEnv
from textgen_env.edit.drafts import make_draft_source
from textgen_env.testing import tiny_model_and_tokenizer

try:
    from sb3_contrib import MaskablePPO
except ImportError as error:
    raise DependencyNotInstalled('This example needs sb3-contrib. Run: pip install "textgen-env[train]"') from error


def mean_and_se(values: list[float]) -> tuple[float, float, int]:
    """Mean, standard error and n of `values`."""
    array = np.asarray(values, dtype=float)
    se = float(array.std(ddof=1) / np.sqrt(len(array))) if len(array) > 1 else float("nan")
    return float(array.mean()), se, len(array)


def episode_gain(env: TextEditEnv, draft: str, seed: int, choose: Callable[[dict, np.ndarray], int]) -> float:
    """score(final) - score(draft) of one episode from `draft`, actions from `choose(obs, mask)`."""
    obs, info = env.reset(seed=seed, options={"draft": draft})
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(choose(obs, env.action_masks()))
        done = terminated or truncated
    before, after = env.reward(["", ""], [info["draft"], info["text"]], [True, True])
    return float(after - before)


def evaluate(env: TextEditEnv, drafts: list[str], seeds: int, choose) -> list[float]:
    """Per draft, the mean gain over `seeds` episodes."""
    return [float(np.mean([episode_gain(env, d, 1000 + s, choose) for s in range(seeds)])) for d in drafts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--default-model", action="store_true", help="the embedded SmolLM2-135M (slow on CPU)")
    parser.add_argument("--device", default="cpu", help="device of the env's LM")
    parser.add_argument("--eval-seeds", type=int, default=4)
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="write the numbers to this JSON file")
    args = parser.parse_args()

    model, tokenizer = load_model(device=args.device) if args.default_model else tiny_model_and_tokenizer()
    settings = dict(
        model=model,
        tokenizer=tokenizer,
        reward="sentiment",
        max_edits=4,
        num_candidates=8,
        edit_cost=0.01,
        device=args.device,
    )

    def make(drafts: str) -> Callable[[], Monitor]:
        return lambda: Monitor(TextEditEnv(drafts=drafts, **settings))

    train_env = DummyVecEnv([make("drafts:train")] * args.num_envs)
    ppo = MaskablePPO(
        "MultiInputPolicy",
        train_env,
        n_steps=128,
        batch_size=128,
        n_epochs=4,
        learning_rate=1e-3,
        ent_coef=0.01,
        gamma=1.0,
        seed=args.seed,
        policy_kwargs={"features_extractor_class": EditCandidateExtractor},
    )
    eval_env = TextEditEnv(drafts="drafts:eval", **settings)
    drafts = [p.text for p in make_draft_source("drafts:eval").prompts]
    rng = np.random.default_rng(args.seed)

    def random_edit(obs: dict, mask: np.ndarray) -> int:
        return int(rng.choice(np.flatnonzero(mask[1:]) + 1)) if mask[1:].any() else 0  # never STOP early

    def trained(obs: dict, mask: np.ndarray) -> int:
        return int(ppo.predict(obs, action_masks=mask, deterministic=True)[0])

    random_gains = evaluate(eval_env, drafts, args.eval_seeds, random_edit)
    start = time.perf_counter()
    ppo.learn(args.timesteps)
    seconds = time.perf_counter() - start
    trained_gains = evaluate(eval_env, drafts, args.eval_seeds, trained)
    paired = [a - b for a, b in zip(trained_gains, random_gains)]
    result = {
        "model": "SmolLM2-135M-Instruct" if args.default_model else "tiny random GPT-2 (textgen_env.testing)",
        "reward": "sentiment (VADER compound), dense, edit_cost 0.01, max_edits 4, K 8",
        "timesteps": args.timesteps,
        "train_seconds": round(seconds, 1),
        "no_edit_gain": 0.0,
        "random_edit_gain": mean_and_se(random_gains),
        "maskable_ppo_gain": mean_and_se(trained_gains),
        "maskable_ppo_minus_random": mean_and_se(paired),
        "unit": "held-out drafts (drafts:eval), each the mean over its eval seeds",
        "eval_seeds": args.eval_seeds,
    }
    for key in ("random_edit_gain", "maskable_ppo_gain", "maskable_ppo_minus_random"):
        mean, se, n = result[key]
        print(f"{key:28s} {mean:+.3f} ± {se:.3f} (n={n})")
    print(f"no-edit gain                 +0.000 (by construction); {args.timesteps} steps in {seconds:.0f} s")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            json.dump(result, file, indent=2)


if __name__ == "__main__":
    main()
