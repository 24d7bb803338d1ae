"""Train the LM itself with stock stable-baselines3 PPO and `LMActorCriticPolicy` (offline demo).

The policy is the causal LM (its own next-token distribution over the vocabulary) with a value head on its last
hidden state; PPO updates the LM's weights. The env adds ``kl_coef * log pi_ref(a|s)`` per token and PPO's entropy
bonus uses the same coefficient, which together penalise the KL to the env's frozen model (README, "KL penalty the
SB3 way").
Along the way `GenerationLoggingCallback` writes reward components and sample generations to TensorBoard, and the
end shows ``save`` / ``PPO.load`` and the LM saved in Hugging Face format.

Runs offline on the tiny test model in well under a minute::

    python examples/sb3_ppo_lm_policy.py [--timesteps 3072] [--output runs/sb3_lm] [--default-model]

``tensorboard --logdir runs/sb3_lm`` shows the logs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy

from agents.sb3 import GenerationLoggingCallback, LMActorCriticPolicy, LMSource, make_sb3_env, save_lm
from textgen_env import load_model
from textgen_env.testing import tiny_model_and_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=3072)
    parser.add_argument("--output", default="runs/sb3_lm", help="folder for TensorBoard logs and saved models")
    parser.add_argument("--default-model", action="store_true", help="the embedded SmolLM2-135M instead of tiny")
    args = parser.parse_args()
    model, tokenizer = load_model() if args.default_model else tiny_model_and_tokenizer()
    kl_coef = 0.01
    settings = dict(
        model=model,  # the env's frozen reference; the policy trains a copy
        tokenizer=tokenizer,
        reward="keyword",
        reward_kwargs={"keywords": ["great"]},
        max_new_tokens=12 if args.default_model else 4,
        prompts="movie_reviews" if args.default_model else ["the movie was", "i think it was"],
    )
    env = make_sb3_env(8, algorithm=PPO, policy=LMActorCriticPolicy, kl_coef=kl_coef, seed=0, **settings)
    eval_env = make_sb3_env(8, seed=100, **settings)  # task reward only
    ppo = PPO(
        LMActorCriticPolicy,
        env,
        n_steps=16,
        batch_size=32,
        n_epochs=4,
        learning_rate=1e-5 if args.default_model else 1e-2,
        ent_coef=kl_coef,  # with the env's kl_coef: the KL-penalised objective
        policy_kwargs={"model": LMSource(model), "tokenizer": tokenizer},  # LMSource: save() stores the config only
        tensorboard_log=args.output,
        seed=0,
    )
    before, _ = evaluate_policy(ppo, eval_env, n_eval_episodes=32, deterministic=False)
    start = time.perf_counter()
    ppo.learn(args.timesteps, callback=GenerationLoggingCallback(n_samples=4))
    after, _ = evaluate_policy(ppo, eval_env, n_eval_episodes=32, deterministic=False)
    print(f"PPO with LMActorCriticPolicy: {args.timesteps} tokens in {time.perf_counter() - start:.0f} s")
    print(f"share of sampled completions with 'great': before {before:.2f}, after {after:.2f}")

    output = Path(args.output)
    ppo.save(output / "ppo_lm.zip")
    loaded = PPO.load(output / "ppo_lm.zip", device="cpu")  # rebuilt from the stored config, offline
    obs = eval_env.reset()
    same = np.array_equal(loaded.predict(obs, deterministic=True)[0], ppo.predict(obs, deterministic=True)[0])
    folder = save_lm(ppo, output / "lm")
    print(f"saved {output / 'ppo_lm.zip'} (reloaded: identical greedy actions = {same}) and {folder} (HF format)")
    for _ in range(settings["max_new_tokens"]):
        actions, _ = loaded.predict(obs, deterministic=False)
        obs, _, dones, infos = eval_env.step(actions)
        if dones[0]:
            print(f"sample: {infos[0]['prompt']!r} -> {infos[0]['text']!r}")
            break


if __name__ == "__main__":
    main()
