"""Train the LM itself with stock stable-baselines3 PPO and `LMActorCriticPolicy` (offline demo).

The policy is the causal LM (its own next-token distribution over the vocabulary) with a value head on its last
hidden state; PPO updates the LM's weights. The env reports ``log pi_ref(a|s)`` of its frozen model at every step
(``reference_logprobs=True``) and `KLPenaltyCallback` subtracts ``kl_coef * (log pi(a|s) - log pi_ref(a|s))`` from
the rollout's rewards before each update, so PPO (with ``ent_coef=0``) optimises the reward minus ``kl_coef`` times
the KL to the env's frozen model (docs/sb3.md, "KL penalty the SB3 way").
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

import gymnasium as gym
import numpy as np
from stable_baselines3 import PPO

from agents import LMPolicy
from agents.evaluation import evaluate, paired_gain
from agents.sb3 import (
    EpisodeRolloutBuffer,
    GenerationLoggingCallback,
    KLPenaltyCallback,
    LMActorCriticPolicy,
    LMSource,
    make_sb3_env,
    save_lm,
)
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
    # held-out prompts for the before/after evaluation (about half the words of the built-in sets are not in the tiny
    # vocabulary)
    eval_prompts = (
        "movie_reviews:eval"
        if args.default_model
        else [
            "the film was",
            "the story was",
            "the ending was",
            "the cast was",
            "i think the music was",
            "i thought the plot was",
            "my friend said the acting was",
            "we saw the movie and it was",
        ]
    )
    # reference_logprobs: each step's info carries log pi_ref(a|s) for KLPenaltyCallback (the reward stays the task's)
    env = make_sb3_env(8, algorithm=PPO, policy=LMActorCriticPolicy, reference_logprobs=True, seed=0, **settings)
    eval_env = gym.make_vec("TextGen-v0", num_envs=8, **settings)  # for agents.evaluation: task reward only
    ppo = PPO(
        LMActorCriticPolicy,
        env,
        n_steps=16,
        batch_size=32,
        n_epochs=4,
        learning_rate=1e-5 if args.default_model else 1e-2,
        ent_coef=0.0,  # the KL penalty comes from KLPenaltyCallback; an entropy bonus would add another term
        policy_kwargs={"model": LMSource(model)},  # LMSource: save() stores the config only
        rollout_buffer_class=EpisodeRolloutBuffer,  # each update scores every episode with one forward
        normalize_advantage=False,  # the buffer normalises once over the rollout (SB3's estimator), not per minibatch
        rollout_buffer_kwargs={"normalize_advantage": True},
        tensorboard_log=args.output,
        seed=0,
    )

    def held_out():  # samples of every held-out prompt, same seed before and after (paired); KL to the env's model
        policy = LMPolicy(ppo.policy.lm, tokenizer, value_head=False, reference=model)
        return evaluate(policy, eval_env, eval_prompts, samples_per_prompt=8, seed=0)

    before = held_out()
    start = time.perf_counter()
    ppo.learn(args.timesteps, callback=[GenerationLoggingCallback(n_samples=4), KLPenaltyCallback(kl_coef=kl_coef)])
    after = held_out()
    gain = paired_gain(before, after)
    print(
        f"PPO with LMActorCriticPolicy, KL coefficient {kl_coef}: {args.timesteps} tokens in "
        f"{time.perf_counter() - start:.0f} s"
    )
    print(
        f"held-out: {after.num_prompts} prompts x {after.samples_per_prompt} samples (± = standard error over prompts)"
    )
    print(
        f"share of sampled completions with 'great': before {before.reward.mean:.2f} ± {before.reward.se:.2f}, "
        f"after {after.reward.mean:.2f} ± {after.reward.se:.2f} (paired gain {gain.mean:+.2f} ± {gain.se:.2f})"
    )
    print(f"KL to the reference (nats per completion): after {after.kl.mean:.2f} ± {after.kl.se:.2f}")

    output = Path(args.output)
    ppo.save(output / "ppo_lm.zip")
    loaded = PPO.load(output / "ppo_lm.zip", device="cpu")  # rebuilt from the stored config, offline
    sample_env = make_sb3_env(8, seed=100, **settings)
    obs = sample_env.reset()
    same = np.array_equal(loaded.predict(obs, deterministic=True)[0], ppo.predict(obs, deterministic=True)[0])
    folder = save_lm(ppo, output / "lm")
    print(f"saved {output / 'ppo_lm.zip'} (reloaded: identical greedy actions = {same}) and {folder} (HF format)")
    for _ in range(settings["max_new_tokens"]):
        actions, _ = loaded.predict(obs, deterministic=False)
        obs, _, dones, infos = sample_env.step(actions)
        if dones[0]:
            print(f"sample: {infos[0]['prompt']!r} -> {infos[0]['text']!r}")
            break


if __name__ == "__main__":
    main()
