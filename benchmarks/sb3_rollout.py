"""SB3 rollout collection with `LMActorCriticPolicy`: KV cache on, KV cache off and `model.generate`, side by side.

For one model (the tiny test model by default, ``--default-model`` for the embedded SmolLM2-135M) and one batch
(``--num-envs`` envs, ``--tokens`` new tokens per episode, movie-review prompts), it prints:

* ``collect tok/s``: tokens per second of stock ``PPO.collect_rollouts`` (``n_steps`` = 2 episodes per env), with
  the policy's per-env KV cache (``use_kv_cache=True``) and without it (a full forward over every sequence at each
  step); ``policy ms/step`` is the part spent in the policy's forward, the rest is SB3 and the env;
* ``generate tok/s``: ``model.generate`` sampling the same number of tokens for the same batch (the baseline);
* ``update s`` and ``update/collect``: one ``PPO.train()`` call (``--n-epochs`` epochs, minibatches of 64 steps) on
  the collected rollout, over the time it took to collect that rollout: with SB3's stock buffer (shuffled single
  steps, one full-sequence forward each) and with `EpisodeRolloutBuffer` (whole episodes, one forward each);
  ``update ms/token`` is the update time per collected token.

Usage: ``python benchmarks/sb3_rollout.py [--num-envs 8] [--tokens 32] [--default-model]``
"""

from __future__ import annotations

import argparse
import time

import torch
from generate_baseline import generate_rate
from stable_baselines3 import PPO

from agents.sb3 import EpisodeRolloutBuffer, LMActorCriticPolicy, LMSource, make_sb3_env
from textgen_env import load_model
from textgen_env.prompts import make_prompt_source
from textgen_env.testing import tiny_model_and_tokenizer


def sb3_collect(
    model,
    tokenizer,
    *,
    num_envs: int,
    tokens: int,
    use_kv_cache: bool,
    repeats: int,
    n_epochs: int,
    rollout_buffer_class: type | None = None,
) -> dict:
    """Best-of-`repeats` collection rate, its policy share, and the time of one PPO update."""
    env = make_sb3_env(
        num_envs,
        model=model,
        tokenizer=tokenizer,
        prompts="movie_reviews:eval",
        reward="length",
        max_new_tokens=tokens,
        stop_on_eos=False,
        seed=0,
    )
    steps = 2 * tokens
    ppo = PPO(
        LMActorCriticPolicy,
        env,
        n_steps=steps,
        batch_size=64,
        n_epochs=max(n_epochs, 1),
        seed=0,
        policy_kwargs={"model": LMSource(model), "tokenizer": tokenizer, "use_kv_cache": use_kv_cache},
        rollout_buffer_class=rollout_buffer_class,
        # whole-episode minibatches: advantages normalised once over the rollout (SB3's estimator), not per minibatch
        normalize_advantage=rollout_buffer_class is None,
        rollout_buffer_kwargs={"normalize_advantage": True} if rollout_buffer_class is not None else None,
    )
    policy_time = [0.0]
    forward = ppo.policy.forward

    def timed_forward(*args, **kwargs):
        start = time.perf_counter()
        result = forward(*args, **kwargs)
        policy_time[0] += time.perf_counter() - start
        return result

    ppo.policy.forward = timed_forward
    _, callback = ppo._setup_learn(steps * num_envs * (repeats + 1))
    ppo.collect_rollouts(ppo.env, callback, ppo.rollout_buffer, steps)  # warm-up
    best = None
    for _ in range(repeats):
        policy_time[0] = 0.0
        start = time.perf_counter()
        ppo.collect_rollouts(ppo.env, callback, ppo.rollout_buffer, steps)
        elapsed = time.perf_counter() - start
        if best is None or elapsed < best[0]:
            best = (elapsed, policy_time[0])
    start = time.perf_counter()
    if n_epochs:
        ppo.train()
    update = time.perf_counter() - start if n_epochs else float("nan")
    elapsed, in_policy = best
    return {
        "rate": num_envs * steps / elapsed,
        "policy_ms": in_policy / steps * 1e3,
        "collect_s": elapsed,
        "update_s": update,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per episode")
    parser.add_argument("--repeats", type=int, default=2, help="best of N for each rate")
    parser.add_argument("--n-epochs", type=int, default=10, help="PPO epochs of the timed update (0 skips it)")
    parser.add_argument("--default-model", action="store_true", help="the embedded SmolLM2-135M instead of tiny")
    args = parser.parse_args()
    torch.manual_seed(0)
    name, (model, tokenizer) = (
        ("SmolLM2-135M", load_model()) if args.default_model else ("tiny", tiny_model_and_tokenizer())
    )
    prompts = [p.text for p in make_prompt_source("movie_reviews:eval").prompts]
    batch_prompts = (prompts * (args.num_envs // len(prompts) + 1))[: args.num_envs]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, model {name}, {args.num_envs} envs, "
        f"{args.tokens} new tokens per episode\n"
    )
    header = f"{'path':<34}{'collect tok/s':>15}{'policy ms/step':>16}{'update s':>10}{'update/collect':>16}"
    print(header + f"{'update ms/token':>17}")
    results = {}
    paths = {
        "cache, stock buffer": dict(use_kv_cache=True),
        "cache, EpisodeRolloutBuffer": dict(use_kv_cache=True, rollout_buffer_class=EpisodeRolloutBuffer),
        "no cache, stock buffer": dict(use_kv_cache=False),
    }
    for label, options in paths.items():
        r = results[label] = sb3_collect(
            model,
            tokenizer,
            num_envs=args.num_envs,
            tokens=args.tokens,
            repeats=args.repeats,
            n_epochs=args.n_epochs,
            **options,
        )
        ratio = r["update_s"] / r["collect_s"]
        per_token = r["update_s"] / (args.num_envs * 2 * args.tokens) * 1e3
        print(
            f"{label:<34}{r['rate']:>15.0f}{r['policy_ms']:>16.2f}{r['update_s']:>10.2f}{ratio:>16.1f}"
            f"{per_token:>17.2f}"
        )
    stock, episodes = results["cache, stock buffer"], results["cache, EpisodeRolloutBuffer"]
    gen = generate_rate(model, tokenizer, batch_prompts, args.tokens, args.repeats)
    print(f"{'model.generate':<34}{gen:>15.0f}")
    print(
        f"\ncache speed-up {stock['rate'] / results['no cache, stock buffer']['rate']:.2f}x; "
        f"SB3 with cache / generate = {stock['rate'] / gen:.2f}; "
        f"update with EpisodeRolloutBuffer {stock['update_s'] / episodes['update_s']:.1f}x faster than stock"
    )


if __name__ == "__main__":
    main()
