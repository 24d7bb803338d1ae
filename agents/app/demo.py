"""``textgen-env demo``: the untrained model generating through the vector env loop, rewards printed per episode."""

from __future__ import annotations

import argparse
import time
from typing import cast

import numpy as np
import torch

__all__ = ["run_demo"]


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo described by parsed `textgen-env demo` arguments."""
    import gymnasium as gym

    import textgen_env  # noqa: F401  (registers TextGen-v0)
    from textgen_env import TextGenVectorEnv
    from textgen_env.generation import KVSampler

    torch.manual_seed(args.seed)
    vec = gym.make_vec(
        "TextGen-v0",
        num_envs=args.num_envs,
        model=args.model,
        prompts=args.prompts,
        reward=args.reward,
        max_new_tokens=args.max_new_tokens,
    )
    env = cast(TextGenVectorEnv, vec.unwrapped)  # TextGen-v0's vector entry point
    model = env.model  # the env's model doubles as the (untrained) policy here
    policy = KVSampler(model, args.num_envs, vocab_size=len(env.tokenizer), temperature=args.temperature)
    obs, _ = vec.reset(seed=args.seed)
    restart = np.ones(args.num_envs, dtype=bool)  # slots whose observation is a fresh prompt
    autoreset = np.zeros(args.num_envs, dtype=bool)  # slots the env resets on the next step (NEXT_STEP mode)
    finished = 0
    start = time.perf_counter()
    steps = 0
    while finished < args.episodes:
        ids, mask = obs["input_ids"], obs["attention_mask"].astype(bool)
        tokens = [ids[i][mask[i]].tolist() if restart[i] else ids[i, -1:].tolist() for i in range(args.num_envs)]
        actions = policy.step(tokens, restart.tolist()).cpu().numpy()  # torch's global generator, seeded above
        obs, rewards, terminated, truncated, infos = vec.step(actions)
        steps += args.num_envs
        restart, autoreset = autoreset, terminated | truncated
        for i in np.flatnonzero(autoreset):
            finished += 1
            print(f"[{finished}] reward {rewards[i]:+.3f}  {infos['prompt'][i]} ->{infos['text'][i]!r}")
    elapsed = time.perf_counter() - start
    print(f"{steps} env steps in {elapsed:.1f} s ({steps / elapsed:.0f} tokens/s)")
    vec.close()
    return 0
