"""Steer a frozen LM with a small stock SB3 policy: top-k actions, hidden-state observations (offline demo).

With ``action_mode="top_k"`` action i picks the env model's i-th most likely next token, so even a policy that
knows nothing about language writes fluent text; with ``observation_mode="hidden"`` the observation is the env
model's last hidden state, a feature vector that SB3's ``MlpPolicy`` reads directly. The LM is never trained: the
small MLP learns which of the k candidates to take. The reward asks for the word "loved" and penalises "hate",
"hated" and "dull".

Runs offline on the tiny test model in well under a minute::

    python examples/sb3_topk_hidden.py [--algorithm ppo|a2c|dqn] [--timesteps 6000] [--default-model]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

from agents.sb3 import make_sb3_env
from textgen_env import load_model
from textgen_env.testing import tiny_model_and_tokenizer

ALGORITHMS = {  # stock classes; a few settings sized for short runs
    "ppo": (PPO, {"n_steps": 128, "batch_size": 64, "learning_rate": 1e-3}),
    "a2c": (A2C, {"learning_rate": 1e-3}),
    "dqn": (
        DQN,
        {"learning_starts": 500, "target_update_interval": 250, "exploration_fraction": 0.3, "learning_rate": 1e-3},
    ),
}


def uniform_choice_reward(env: VecEnv, episodes: int) -> float:
    """Mean episode reward when every action is drawn uniformly: what the learned policy has to beat."""
    env.reset()
    env.action_space.seed(0)
    returns: list[float] = []
    while len(returns) < episodes:
        _, _, dones, infos = env.step(np.array([env.action_space.sample() for _ in range(env.num_envs)]))
        returns += [info["episode"]["r"] for info, done in zip(infos, dones) if done]
    return float(np.mean(returns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithm", choices=sorted(ALGORITHMS), default="ppo")
    parser.add_argument("--timesteps", type=int, default=6000)
    parser.add_argument("--default-model", action="store_true", help="the embedded SmolLM2-135M instead of tiny")
    args = parser.parse_args()
    model, tokenizer = load_model() if args.default_model else tiny_model_and_tokenizer()
    settings = dict(
        model=model,
        tokenizer=tokenizer,
        action_mode="top_k",
        top_k=5,
        observation_mode="hidden",
        reward="keyword",
        reward_kwargs={"keywords": ["loved"], "avoid": ["hate", "hated", "dull"]},
        reward_mode="dense",  # pays when the word appears, not only at the end
        max_new_tokens=8,
        prompts="movie_reviews" if args.default_model else ["the movie was", "i think the film", "the story"],
    )
    algorithm, options = ALGORITHMS[args.algorithm]
    env = make_sb3_env(4, algorithm=algorithm, seed=0, **settings)  # checks that the modes suit the algorithm
    eval_env = make_sb3_env(4, seed=100, **settings)
    agent = algorithm("MlpPolicy", env, seed=0, **options)
    uniform = uniform_choice_reward(eval_env, episodes=40)
    start = time.perf_counter()
    agent.learn(args.timesteps)
    after, _ = evaluate_policy(agent, eval_env, n_eval_episodes=40)
    print(
        f"{args.algorithm.upper()} on top_k=5 / hidden: {args.timesteps} steps in {time.perf_counter() - start:.0f} s"
    )
    print(f"mean episode reward: uniform choice among the top {settings['top_k']} {uniform:+.3f}, trained {after:+.3f}")
    obs = eval_env.reset()
    for _ in range(settings["max_new_tokens"]):
        actions, _ = agent.predict(obs, deterministic=True)
        obs, _, dones, infos = eval_env.step(actions)
        if dones[0]:
            print(f"sample: {infos[0]['prompt']!r} -> {infos[0]['text']!r}")
            break


if __name__ == "__main__":
    main()
