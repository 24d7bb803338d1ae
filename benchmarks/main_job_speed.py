"""Seconds per iteration of the main job's GRPO (collect, then update), for its speed options side by side.

Every variant runs the main job's agent settings (``MAIN_JOB_OPTIONS``: 16 completions of 20 tokens per iteration
in groups of 4, minibatches of 8, one epoch, the exact KL in the loss) on the same model and prompts; only the named
options differ: the number of env slots (8: two collection rounds per iteration; 16: one), LoRA (rank 16, all linear
layers) instead of full fine-tuning, and ``bf16_autocast`` (bfloat16 forwards, float32 weights and optimizer). The
variants are interleaved, iteration by iteration, so a change in machine load hits them all alike; the first
iteration of each is a warm-up and is not timed. Ratios are over the first variant (the main job before these
options: 8 slots, full fine-tuning, float32); the main job now runs the third (16 slots, full, bf16).

Usage: ``python benchmarks/main_job_speed.py [--iterations 3] [--tiny]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from agents import GRPO
from agents.app.training import MAIN_JOB_OPTIONS
from textgen_env import TextGenVectorEnv, load_model
from textgen_env.testing import tiny_model_and_tokenizer

VARIANTS: dict[str, tuple[int, dict]] = {
    "8 slots, full, fp32": (8, {"bf16_autocast": False}),
    "16 slots, full, fp32": (16, {"bf16_autocast": False}),
    "16 slots, full, bf16": (16, {"bf16_autocast": True}),
    "16 slots, LoRA, fp32": (16, {"lora_rank": 16, "bf16_autocast": False}),
    "16 slots, LoRA, bf16": (16, {"lora_rank": 16, "bf16_autocast": True}),
}
"""name -> (num_envs, agent options on top of the main job's)."""


def _agent(model, tokenizer, num_envs: int, options: dict) -> GRPO:
    env = TextGenVectorEnv(num_envs=num_envs, model=model, tokenizer=tokenizer, reward="sentiment", max_new_tokens=20)
    return GRPO(env, seed=0, **{**MAIN_JOB_OPTIONS, **options})


def _iteration(agent: GRPO) -> tuple[float, float, int]:
    start = time.perf_counter()
    rollout = agent.collect()
    collected = time.perf_counter()
    agent.update(rollout)
    agent.iteration += 1
    tokens = rollout.num_tokens
    return collected - start, time.perf_counter() - collected, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations per variant")
    parser.add_argument("--tiny", action="store_true", help="the tiny test model (a smoke run)")
    args = parser.parse_args()
    model, tokenizer = tiny_model_and_tokenizer() if args.tiny else load_model()
    agents = {name: _agent(model, tokenizer, n, options) for name, (n, options) in VARIANTS.items()}
    times: dict[str, list[tuple[float, float, int]]] = {name: [] for name in agents}
    for round_index in range(args.iterations + 1):
        for name, agent in agents.items():
            measured = _iteration(agent)
            if round_index:  # the first is a warm-up
                times[name].append(measured)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.iterations} timed iterations each")
    print(f"{'variant':<24}{'collect s':>11}{'update s':>10}{'iteration s':>13}{'tok/s':>8}{'speed-up':>10}")
    first = None
    for name, rows in times.items():
        collect = statistics.median(r[0] for r in rows)
        update = statistics.median(r[1] for r in rows)
        rate = sum(r[2] for r in rows) / sum(r[0] + r[1] for r in rows)
        first = first or rate
        print(f"{name:<24}{collect:>11.2f}{update:>10.2f}{collect + update:>13.2f}{rate:>8.1f}{rate / first:>9.2f}x")


if __name__ == "__main__":
    main()
