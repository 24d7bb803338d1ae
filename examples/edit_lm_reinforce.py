"""Our LM policy on TextEdit-v0: the LM scores each candidate edit by log-probability; REINFORCE or PPO trains it.

Same task and evaluation as ``examples/edit_maskable_ppo.py`` (VADER sentiment of the text, dense, held-out
``drafts:eval``, gain = score(final) - score(draft), n = 15 drafts): the untrained LM policy, the trained one and
no editing (0). Offline on the tiny test model::

    python examples/edit_lm_reinforce.py [--agent reinforce|ppo] [--iterations 150] [--output result.json]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np

from agents.edit import EditPPO, EditPPOConfig, EditReinforce, EditReinforceConfig
from agents.policy import LMPolicy
from textgen_env.edit import TextEditEnv, TextEditVectorEnv
from textgen_env.edit.drafts import make_draft_source
from textgen_env.storage import atomic_write_json
from textgen_env.testing import tiny_model_and_tokenizer


def held_out_gains(agent: EditReinforce, env: TextEditEnv, drafts: list[str], seeds: int) -> np.ndarray:
    """Per draft, the mean over `seeds` episodes of score(final) - score(draft), the policy sampling."""
    gains = []
    for draft in drafts:
        values = []
        for seed in range(seeds):
            obs, info = env.reset(seed=1000 + seed, options={"draft": draft})
            done = False
            while not done:
                batch = {key: np.asarray(value)[None] for key, value in obs.items()}
                obs, _, terminated, truncated, info = env.step(int(agent.act(batch)[0]))
                done = terminated or truncated
            before, after = env.reward(["", ""], [info["draft"], info["text"]], [True, True])
            values.append(after - before)
        gains.append(float(np.mean(values)))
    return np.asarray(gains)


def summary(values: np.ndarray) -> tuple[float, float, int]:
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values))), len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--eval-seeds", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--agent", choices=["reinforce", "ppo"], default="reinforce")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    model, tokenizer = tiny_model_and_tokenizer()
    settings = dict(model=model, tokenizer=tokenizer, reward="sentiment", max_edits=4, num_candidates=8, edit_cost=0.01)
    train_env = TextEditVectorEnv(num_envs=args.num_envs, drafts="drafts:train", **settings)
    eval_env = TextEditEnv(drafts="drafts:eval", **settings)
    drafts = [p.text for p in make_draft_source("drafts:eval").prompts]
    policy = LMPolicy(copy.deepcopy(model), tokenizer, value_head=False)
    if args.agent == "ppo":  # clipped ratio, several epochs of minibatches per iteration
        agent = EditPPO(policy, EditPPOConfig(learning_rate=args.learning_rate))
    else:
        agent = EditReinforce(policy, EditReinforceConfig(learning_rate=args.learning_rate))
    untrained = held_out_gains(agent, eval_env, drafts, args.eval_seeds)
    start = time.perf_counter()
    returns = agent.learn(train_env, iterations=args.iterations)
    seconds = time.perf_counter() - start
    trained = held_out_gains(agent, eval_env, drafts, args.eval_seeds)
    result = {
        "model": "tiny random GPT-2 (textgen_env.testing), trained as the policy",
        "reward": "sentiment (VADER compound), dense, edit_cost 0.01, max_edits 4, K 8",
        "agent": args.agent,
        "iterations": args.iterations,
        "episodes": args.iterations * args.num_envs,
        "train_seconds": round(seconds, 1),
        "train_return_first_last_5": [float(np.mean(returns[:5])), float(np.mean(returns[-5:]))],
        "no_edit_gain": 0.0,
        "untrained_lm_gain": summary(untrained),
        "trained_lm_gain": summary(trained),
        "trained_minus_untrained": summary(trained - untrained),
    }
    for key in ("untrained_lm_gain", "trained_lm_gain", "trained_minus_untrained"):
        mean, se, n = result[key]
        print(f"{key:26s} {mean:+.3f} ± {se:.3f} (n={n})")
    print(f"{result['episodes']} training episodes in {seconds:.0f} s")
    if args.output:
        atomic_write_json(args.output, result)


if __name__ == "__main__":
    main()
