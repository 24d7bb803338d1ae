"""One rank of the data-parallel tests (run by tests/agents/test_distributed.py with torchrun's variables set).

Usage: python distributed_worker.py OUTPUT ALGORITHM MODE, MODE being "train" (3 iterations; saves the rank's
rollouts, minibatches and final weights to OUTPUT/rank{RANK}.pt) or "fail" (rank 1 dies after its first iteration).
ALGORITHM "ppo-dialogue" trains PPO on conversations of 1 to 3 replies (TextDialogue-v0), so the ranks collect
different numbers of episodes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from agents import GRPO, PPO
from agents.distributed import DistributedContext
from textgen_env import TextGenVectorEnv
from textgen_env.dialogue import Scenario, TextDialogueVectorEnv
from textgen_env.testing import tiny_model_and_tokenizer

OPTIONS = {
    "ppo": (PPO, {"kl_coef": 0.05, "kl_target": 0.5, "kl_horizon": 8}),
    "grpo": (GRPO, {"kl_coef": 0.05, "kl_target": 0.5, "kl_horizon": 8, "group_size": 2}),
    "ppo-dialogue": (PPO, {"kl_coef": 0.05, "kl_target": 0.5, "kl_horizon": 8}),
}

CHATTY = Scenario(  # content once a reply holds a common word: conversations of 1 to 3 replies
    name="chatty",
    persona="a movie fan",
    goal="hear a common word",
    opening="the movie was",
    follow_ups=("i think it was",),
    rubric="keyword",
    rubric_kwargs={"keywords": ["the", "a", "it", "is", "was", "i", "and"]},
    satisfied_at=0.1,
)


def build(algorithm: str, ctx: DistributedContext, num_envs: int = 4):
    model, tokenizer = tiny_model_and_tokenizer()
    if algorithm.endswith("-dialogue"):
        cls, options = OPTIONS[algorithm]
        conversations = TextDialogueVectorEnv(
            num_envs=num_envs,
            model=model,
            tokenizer=tokenizer,
            scenarios=[CHATTY],
            max_turns=3,
            max_reply_tokens=4,
            max_context_tokens=64,
            chat_template=False,
        )
        # each rank collects one round of 4 conversations (4 to 12 replies) and takes minibatches of 2 replies
        settings = dict(episodes_per_iteration=8, minibatch_size=4, epochs=2, learning_rate=1e-2, seed=3, **options)
        return cls(conversations, distributed=ctx, **settings)
    env = TextGenVectorEnv(
        num_envs=num_envs,
        model=model,
        tokenizer=tokenizer,
        reward="keyword",
        reward_kwargs={"keywords": ["great"]},
        reward_mode="dense",
        max_new_tokens=4,
        prompts=["the movie was", "i think it was", "the story is", "my friend said"],
    )
    cls, options = OPTIONS[algorithm]
    # episodes and minibatches are global: each of 2 ranks collects 4 and takes one minibatch of 4 per epoch
    settings = dict(episodes_per_iteration=8, minibatch_size=8, epochs=2, learning_rate=1e-2, seed=0, **options)
    return cls(env, distributed=ctx, **settings)


def main() -> None:
    output, algorithm, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    ctx = DistributedContext.from_environment()
    agent = build(algorithm, ctx)
    rollouts = []
    collect = agent.collect

    def recorded(*args, **kwargs):
        rollout = collect(*args, **kwargs)
        rollouts.append(rollout)
        if mode == "fail" and ctx.rank == 1 and len(rollouts) == 2:
            raise RuntimeError("rank 1 fails on purpose")
        return rollout

    agent.collect = recorded
    minibatches = []
    split = agent.minibatches

    def recorded_split(size):
        chunks = split(size)
        minibatches.append([chunk.tolist() for chunk in chunks])
        return chunks

    agent.minibatches = recorded_split
    snapshots = []
    if algorithm.endswith("-dialogue"):
        while agent.iteration < 3:  # conversations vary in length: 3 iterations, whatever their tokens
            agent.learn(agent.num_timesteps + 1)
            snapshots.append({n: p.detach().clone() for n, p in agent.policy.named_parameters() if p.requires_grad})
    else:
        agent.learn(3 * 32)  # 3 iterations of 8 episodes x 4 tokens over both ranks
    weights = {name: p.detach().clone() for name, p in agent.policy.named_parameters() if p.requires_grad}
    torch.save(
        {
            "rollouts": rollouts,
            "minibatches": minibatches,
            "snapshots": snapshots,
            "weights": weights,
            "kl_coef": agent.kl_controller.value,
            "steps": agent.num_timesteps,
        },
        output / f"rank{ctx.rank}.pt",
    )


if __name__ == "__main__":
    main()
