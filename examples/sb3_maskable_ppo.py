"""sb3-contrib's MaskablePPO on the full vocabulary, restricted to the env model's top-k tokens (offline demo).

In ``action_mode="vocab"`` the action is a token id; with ``mask_top_k=5`` the env's ``action_masks()`` allows only
the env model's five most likely next tokens, and ``MaskablePPO`` samples among those alone. ``MultiInputPolicy``
reads the Dict token observation through `agents.sb3.TokenBagExtractor` (token embeddings, not raw ids as floats).
An audit wrapper checks every action against the mask the env offered. The reward asks for "loved" and penalises
"hate", "hated" and "dull".

Runs offline on the tiny test model in well under a minute (needs ``pip install sb3-contrib``)::

    python examples/sb3_maskable_ppo.py [--timesteps 4096] [--default-model]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
from gymnasium.error import DependencyNotInstalled
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.sb3 import TokenBagExtractor, check_sb3_env
from textgen_env import TextGenEnv, load_model
from textgen_env.testing import tiny_model_and_tokenizer

try:
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.evaluation import evaluate_policy
except ImportError as error:
    raise DependencyNotInstalled('This example needs sb3-contrib. Run: pip install "textgen-env[train]"') from error


class MaskAudit(gym.Wrapper):
    """Counts the actions taken outside the mask the env offered for that step."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.steps = 0
        self.masked_actions = 0

    def step(self, action):
        self.steps += 1
        self.masked_actions += int(not self.env.action_masks()[int(action)])
        return self.env.step(action)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=4096)
    parser.add_argument("--default-model", action="store_true", help="the embedded SmolLM2-135M instead of tiny")
    args = parser.parse_args()
    model, tokenizer = load_model() if args.default_model else tiny_model_and_tokenizer()
    settings = dict(
        model=model,
        tokenizer=tokenizer,
        mask_top_k=5,
        reward="keyword",
        reward_kwargs={"keywords": ["loved"], "avoid": ["hate", "hated", "dull"]},
        reward_mode="dense",
        max_new_tokens=8,
        prompts="movie_reviews" if args.default_model else ["the movie was", "i think the film", "the story"],
    )
    audits = [MaskAudit(TextGenEnv(**settings)) for _ in range(4)]
    env = DummyVecEnv([lambda audit=audit: Monitor(audit) for audit in audits])
    env.seed(0)
    check_sb3_env(env, MaskablePPO, "MultiInputPolicy")
    eval_env = DummyVecEnv([lambda: Monitor(TextGenEnv(**settings))] * 4)
    eval_env.seed(100)
    agent = MaskablePPO(
        "MultiInputPolicy",
        env,
        n_steps=128,
        batch_size=64,
        learning_rate=1e-3,
        seed=0,
        policy_kwargs={"features_extractor_class": TokenBagExtractor},
    )
    before, _ = evaluate_policy(agent, eval_env, n_eval_episodes=40, deterministic=False)
    start = time.perf_counter()
    agent.learn(args.timesteps)
    after, _ = evaluate_policy(agent, eval_env, n_eval_episodes=40, deterministic=True)
    steps, masked = sum(a.steps for a in audits), sum(a.masked_actions for a in audits)
    print(
        f"MaskablePPO, vocab actions masked to the top 5: {args.timesteps} steps in {time.perf_counter() - start:.0f} s"
    )
    print(f"mean episode reward: untrained (uniform over the mask) {before:+.3f}, trained {after:+.3f}")
    print(f"actions outside the mask: {masked} of {steps}")
    assert masked == 0, "MaskablePPO took a masked action"
    obs = eval_env.reset()
    for _ in range(settings["max_new_tokens"]):
        masks = np.stack(eval_env.env_method("action_masks"))
        actions, _ = agent.predict(obs, action_masks=masks, deterministic=True)
        obs, _, dones, infos = eval_env.step(actions)
        if dones[0]:
            print(f"sample: {infos[0]['prompt']!r} -> {infos[0]['text']!r}")
            break


if __name__ == "__main__":
    main()
