"""Env rollout speed next to `model.generate`, measured side by side in one run.

For each model (the tiny test model and the embedded default) and batch size (1, 8, 32), it prints:

* ``generate tok/s``: ``model.generate`` sampling ``T`` new tokens for ``B`` prompts (the baseline);
* ``env tok/s``: the same model generating through the env loop: `TextGenEnv` (B=1) or `TextGenVectorEnv` in its
  default mode (vocab actions, token observations), the script acting as the agent with its own KV cache and an
  inverse-CDF sampler; ``ratio`` = env / generate;
* ``env us/slot-step``: time spent inside ``env.step`` per env and step: the env's own overhead;
* ``top_k step / cached fwd``: one step of the env in ``top_k`` + ``hidden`` mode (where the env runs the model)
  over one bare KV-cached single-token forward of the same batch: ~1 means a step costs one cached token forward.

Usage: ``python benchmarks/env_throughput.py [--tokens 32] [--batches 1 8 32] [--skip-default]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from generate_baseline import generate_rate

from agents.sampling import sample_tokens
from textgen_env import TextGenEnv, TextGenVectorEnv, load_model
from textgen_env.kv import SlotKVCache
from textgen_env.prompts import make_prompt_source
from textgen_env.testing import tiny_model_and_tokenizer


def _env(model, tokenizer, batch: int, tokens: int, **kwargs):
    common = dict(model=model, tokenizer=tokenizer, max_new_tokens=tokens, stop_on_eos=False, **kwargs)
    return TextGenEnv(**common) if batch == 1 else TextGenVectorEnv(num_envs=batch, **common)


def _as_batch(value, batch: int):
    return {k: v[None] for k, v in value.items()} if batch == 1 else value


@torch.no_grad()
def env_rollout(model, tokenizer, batch: int, tokens: int) -> tuple[float, float]:
    """(tokens/s of one full rollout round, microseconds per slot-step inside env.step)."""
    env = _env(model, tokenizer, batch, tokens)
    policy = SlotKVCache(model, batch)
    vocab = len(tokenizer)
    start = time.perf_counter()
    obs, _ = env.reset(seed=0)
    obs = _as_batch(obs, batch)
    ids = obs["input_ids"]
    mask = obs["attention_mask"].astype(bool)
    logits = policy.advance([ids[i][mask[i]].tolist() for i in range(batch)], [True] * batch).logits
    in_env = 0.0
    for _ in range(tokens):
        actions = sample_tokens(logits[:, :vocab]).numpy()
        t0 = time.perf_counter()
        obs, *_ = env.step(int(actions[0]) if batch == 1 else actions)
        in_env += time.perf_counter() - t0
        logits = policy.advance([[int(a)] for a in actions], [False] * batch).logits
    elapsed = time.perf_counter() - start
    return batch * tokens / elapsed, in_env / (batch * tokens) * 1e6


@torch.no_grad()
def model_step_ratio(model, tokenizer, batch: int, tokens: int) -> float:
    """Median env step time in top_k + hidden mode over the median bare cached forward time."""
    env = _env(model, tokenizer, batch, tokens, action_mode="top_k", top_k=4, observation_mode="hidden")
    env.reset(seed=0)
    action = 0 if batch == 1 else np.zeros(batch, dtype=np.int64)
    env_times = []
    for _ in range(tokens - 1):
        t0 = time.perf_counter()
        env.step(action)
        env_times.append(time.perf_counter() - t0)
    cache = SlotKVCache(model, batch, output_hidden=True)
    cache.advance([[5] * 10] * batch, [True] * batch)
    bare_times = []
    for _ in range(tokens - 1):
        t0 = time.perf_counter()
        cache.advance([[7]] * batch, [False] * batch)
        bare_times.append(time.perf_counter() - t0)
    return statistics.median(env_times) / statistics.median(bare_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=2, help="best of N for each rate")
    parser.add_argument("--skip-default", action="store_true", help="only the tiny model")
    args = parser.parse_args()
    torch.manual_seed(0)
    models = {"tiny": tiny_model_and_tokenizer()}
    if not args.skip_default:
        models["SmolLM2-135M"] = load_model()
    prompts = [p.text for p in make_prompt_source("movie_reviews:eval").prompts]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.tokens} new tokens per episode\n")
    header = f"{'model':<14}{'B':>4}{'generate tok/s':>16}{'env tok/s':>12}{'ratio':>8}{'env us/slot-step':>18}"
    print(header + f"{'top_k step / cached fwd':>25}")
    for name, (model, tokenizer) in models.items():
        for batch in args.batches:
            batch_prompts = (prompts * (batch // len(prompts) + 1))[:batch]
            gen = generate_rate(model, tokenizer, batch_prompts, args.tokens, args.repeats)
            runs = [env_rollout(model, tokenizer, batch, args.tokens) for _ in range(args.repeats)]
            env_rate = max(r[0] for r in runs)
            overhead = min(r[1] for r in runs)
            ratio = model_step_ratio(model, tokenizer, batch, args.tokens)
            print(
                f"{name:<14}{batch:>4}{gen:>16.0f}{env_rate:>12.0f}{env_rate / gen:>8.2f}{overhead:>18.1f}"
                f"{ratio:>25.2f}"
            )


if __name__ == "__main__":
    main()
