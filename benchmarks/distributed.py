"""Data-parallel training throughput: 1 and 2 processes (torchrun, gloo on CPU) side by side, same global batch.

Each configuration trains GRPO for ``--iterations`` iterations of ``--episodes`` episodes (split over the ranks)
on the tiny model (``--default-model``: the embedded SmolLM2-135M) and prints training tokens per second over all
ranks, the time per iteration and the all-reduce time per update (gradient averaging, summed over an iteration's
minibatches). On a 2-core machine two processes share the same cores, so this shows the overhead of the
distributed path rather than a speed-up; on one GPU per rank the collection and the update split over the ranks.

Usage: ``python benchmarks/distributed.py [--iterations 6] [--episodes 16] [--default-model]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def child(args: argparse.Namespace) -> None:
    """One rank: train, then rank 0 prints a JSON line with the measurements."""
    import torch

    from agents import GRPO
    from agents.distributed import DistributedContext
    from textgen_env import TextGenVectorEnv, load_model
    from textgen_env.testing import tiny_model_and_tokenizer

    ctx = DistributedContext.from_environment()
    model, tokenizer = load_model() if args.default_model else tiny_model_and_tokenizer()
    per_rank = args.episodes // ctx.world_size
    env = TextGenVectorEnv(
        num_envs=per_rank, model=model, tokenizer=tokenizer, reward="length", max_new_tokens=args.tokens
    )
    agent = GRPO(
        env,
        distributed=ctx,
        episodes_per_iteration=args.episodes,
        minibatch_size=args.episodes // 2,
        group_size=4,
        learning_rate=1e-5,
        kl_coef=0.05,
    )
    reduce_time = [0.0]
    average = ctx.average_gradients

    def timed(*a, **k):
        start = time.perf_counter()
        average(*a, **k)
        reduce_time[0] += time.perf_counter() - start

    agent.dist = _Timed(ctx, timed)
    agent.learn(args.tokens * args.episodes)  # warm-up iteration
    reduce_time[0] = 0.0
    start_tokens, start = agent.num_timesteps, time.perf_counter()
    agent.learn(agent.num_timesteps + args.iterations * args.tokens * args.episodes)
    elapsed = time.perf_counter() - start
    if ctx.is_main:
        result = {
            "world_size": ctx.world_size,
            "tokens_per_second": (agent.num_timesteps - start_tokens) / elapsed,
            "seconds_per_iteration": elapsed / args.iterations,
            "allreduce_ms_per_update": reduce_time[0] / args.iterations * 1e3,
            "threads_per_rank": torch.get_num_threads(),
        }
        print("RESULT " + json.dumps(result), flush=True)


class _Timed:
    """The rank's context with its gradient all-reduce timed."""

    def __init__(self, ctx, timed) -> None:
        self._ctx, self._timed = ctx, timed

    def average_gradients(self, *args, **kwargs):
        return self._timed(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._ctx, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--episodes", type=int, default=16, help="episodes per iteration over all ranks")
    parser.add_argument("--tokens", type=int, default=16, help="new tokens per episode")
    parser.add_argument("--default-model", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    rows = []
    for world_size, threads in ((1, None), (1, "1"), (2, None)):  # 1 process with all cores, then with one
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={world_size}"]
        command += [__file__, "--child", *sys.argv[1:]]
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        if threads:
            env["OMP_NUM_THREADS"] = threads
        out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
        rows.append(json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:]))
    print(f"{os.cpu_count()} CPU cores, {'SmolLM2-135M' if args.default_model else 'tiny model'}, GRPO")
    print(f"{'processes':>10}{'threads/rank':>14}{'tok/s':>10}{'s/iteration':>13}{'all-reduce ms/update':>22}")
    for r in rows:
        print(
            f"{r['world_size']:>10}{r['threads_per_rank']:>14}{r['tokens_per_second']:>10.1f}"
            f"{r['seconds_per_iteration']:>13.2f}{r['allreduce_ms_per_update']:>22.1f}"
        )
    best_single = max(rows[0]["tokens_per_second"], rows[1]["tokens_per_second"])
    print(f"2 processes / best single process: {rows[2]['tokens_per_second'] / best_single:.2f}x")


if __name__ == "__main__":
    main()
