"""Our LM policy on TextEdit-v0: the LM scores each candidate edit by log-probability; REINFORCE or PPO trains it.

Same task as ``examples/edit_maskable_ppo.py`` (VADER sentiment of the text, dense, held-out ``drafts:eval``,
gain = score(final) - score(draft), n = 15 drafts x --eval-seeds episodes, SE over drafts) through
`agents.evaluation.evaluate_edit`, the evaluation of ``textgen-env train --env edit``: the untrained LM policy, the
trained one (paired on the same seeds) and no editing (0). Offline on the tiny test model::

    python examples/edit_lm_reinforce.py [--agent reinforce|ppo] [--iterations 150] [--output result.json]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from agents.edit import EditPPO, EditReinforce
from agents.evaluation import evaluate_edit, paired_gain
from textgen_env.edit import TextEditVectorEnv
from textgen_env.edit.drafts import make_draft_source
from textgen_env.storage import atomic_write_json
from textgen_env.testing import tiny_model_and_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--eval-seeds", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--agent", choices=["reinforce", "ppo"], default="reinforce")
    parser.add_argument("--seed", type=int, default=0, help="the agent's seed (sampling, minibatches, env resets)")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    model, tokenizer = tiny_model_and_tokenizer()
    settings = dict(model=model, tokenizer=tokenizer, reward="sentiment", max_edits=4, num_candidates=8, edit_cost=0.01)
    train_env = TextEditVectorEnv(num_envs=args.num_envs, drafts="drafts:train", **settings)
    eval_env = TextEditVectorEnv(num_envs=args.num_envs, drafts="drafts:eval", **settings)
    drafts = [p.text for p in make_draft_source("drafts:eval").prompts]
    options = {"learning_rate": args.learning_rate, "episodes_per_iteration": args.num_envs, "seed": args.seed}
    if args.agent == "ppo":  # clipped ratio, 4 epochs of minibatches of 2 episodes per iteration
        agent: EditReinforce = EditPPO(train_env, minibatch_size=2, **options)
    else:  # one policy-gradient step per iteration
        agent = EditReinforce(train_env, minibatch_size=args.num_envs, **options)
    untrained = evaluate_edit(agent, eval_env, drafts, samples_per_draft=args.eval_seeds, seed=1000)
    start = time.perf_counter()
    agent.learn(10**9, callback=lambda trained, stats: trained.iteration < args.iterations)
    seconds = time.perf_counter() - start
    trained = evaluate_edit(agent, eval_env, drafts, samples_per_draft=args.eval_seeds, seed=1000)
    returns = [stats["rollout/reward_mean"] for stats in agent.history]
    gain = paired_gain(untrained, trained)
    result = {
        "model": "tiny random GPT-2 (textgen_env.testing), trained as the policy",
        "reward": "sentiment (VADER compound), dense, edit_cost 0.01, max_edits 4, K 8",
        "agent": args.agent,
        "seed": args.seed,
        "iterations": args.iterations,
        "episodes": args.iterations * args.num_envs,
        "edit_steps": agent.num_timesteps,
        "train_seconds": round(seconds, 1),
        "train_return_first_last_5": [float(np.mean(returns[:5])), float(np.mean(returns[-5:]))],
        "no_edit_gain": 0.0,
        "untrained_lm_gain": list(untrained.reward),
        "trained_lm_gain": list(trained.reward),
        "trained_minus_untrained": list(gain),
        "kl_trained": list(trained.kl),
    }
    for key in ("untrained_lm_gain", "trained_lm_gain", "trained_minus_untrained", "kl_trained"):
        mean, se, n = result[key]
        print(f"{key:26s} {mean:+.3f} ± {se:.3f} (n={n} drafts)")
    print(f"{result['episodes']} training episodes in {seconds:.0f} s")
    if args.output:
        atomic_write_json(args.output, result)


if __name__ == "__main__":
    main()
