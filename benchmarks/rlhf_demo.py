"""RLHF end to end without a person: a synthetic user with a hidden preference answers the feedback page over HTTP,
reward models are trained on N of its answers, and GRPO (or PPO, ``--agent ppo``) on a reward model raises the hidden
score on held-out prompts.

    python benchmarks/rlhf_demo.py                      # tiny policy and tiny reward-model trunk, a few minutes
    python benchmarks/rlhf_demo.py --trunk minilm       # the bundled MiniLM encoder as the trunk (slower)
    python benchmarks/rlhf_demo.py --policy smollm2 --trunk minilm   # the embedded SmolLM2 as the policy (~30 min)

With ``--policy smollm2`` the policy is the embedded SmolLM2-135M-Instruct and GRPO takes the main job's options
(`agents.app.settings.MAIN_JOB_OPTIONS`: lr 5e-5, group-centred rewards, bfloat16 forwards, a KL coefficient of 0.03
that rises while the KL passes 5.5 nats); `--learning-rate`, `--kl-coef` and `--kl-target` then override those only
when given (docs/rlhf.md has SmolLM2 runs at the default and at ``--kl-target 4``, which ends under 6 nats).

The hidden preference is VADER sentiment (the package's ``sentiment`` reward), unknown to everything but the user.
Steps: (1) the web app (`FeedbackServer`, 127.0.0.1) shows pairs and single completions of the policy on
``movie_reviews:train`` prompts; the `SyntheticUser` answers `--answers` questions through HTTP. (2) For each N, a
reward model is trained on the first N answers and its accuracy is measured on fresh pairs of completions of the 40
held-out ``movie_reviews:eval`` prompts (pairs the hidden reward does not tie; SE clustered by prompt). (3) GRPO
trains the policy on ``reward="reward-model"`` for each N's model (and, for reference, on the hidden reward itself);
the hidden score of the policy is measured on the held-out prompts before and after with shared sampling seeds
(paired gain, SE over prompts). Results go to ``benchmarks/results/rlhf_demo.json``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from agents import GRPO, PPO
from agents.app.settings import MAIN_JOB_OPTIONS
from agents.evaluation import evaluate, paired_gain
from agents.reward_model import RewardModelConfig, clustered_se, train_reward_model
from textgen_env import TextGenVectorEnv, load_model
from textgen_env.feedback import FeedbackServer, ModelCompleter, QuestionBoard, SyntheticUser
from textgen_env.prompts import make_prompt_source
from textgen_env.rewards import RewardModelReward
from textgen_env.storage import atomic_write_json
from textgen_env.testing import tiny_model_and_tokenizer

HIDDEN = "sentiment"


def collect(model, tokenizer, log: Path, answers: int, max_new_tokens: int, seed: int) -> dict:
    """The synthetic user answers `answers` questions of the web app, through HTTP."""
    completer = ModelCompleter(model, tokenizer, max_new_tokens=max_new_tokens, seed=seed)
    board = QuestionBoard(log, completer=completer, prompts="movie_reviews:train", mode="mixed", seed=seed)
    user = SyntheticUser(HIDDEN)
    started = time.perf_counter()
    with FeedbackServer(board) as server:
        counts = user.answer_page(server.url, answers)
    return {**counts, "seconds": time.perf_counter() - started, "url": server.base_url}


def held_out_pairs(model, tokenizer, n_pairs: int, max_new_tokens: int, seed: int) -> list[tuple[str, str, str]]:
    """(prompt, better, worse) by the hidden reward, on held-out prompts; pairs it ties are left out."""
    completer = ModelCompleter(model, tokenizer, max_new_tokens=max_new_tokens, seed=seed + 10_000)
    user = SyntheticUser(HIDDEN)
    prompts = [p.text for p in make_prompt_source("movie_reviews:eval").prompts]
    pairs = []
    for i in range(n_pairs):
        prompt = prompts[i % len(prompts)]
        a, b = completer(prompt, 2)
        score_a, score_b = user.score(prompt, [a, b])
        if score_a != score_b:
            pairs.append((prompt, a, b) if score_a > score_b else (prompt, b, a))
    return pairs


def accuracy(folder: Path, pairs: list[tuple[str, str, str]]) -> dict:
    reward = RewardModelReward(folder)
    prompts = [p for p, _, _ in pairs]
    better = reward(prompts, [b for _, b, _ in pairs], [True] * len(pairs))
    worse = reward(prompts, [w for _, _, w in pairs], [True] * len(pairs))
    hits = better > worse
    p = float(hits.mean())
    # pairs of one prompt share its difficulty: the SE is clustered by prompt (binomial when there is one prompt)
    return {"accuracy": p, "accuracy_se": clustered_se(hits.astype(np.float64), prompts), "pairs": len(hits)}


def rl(model, tokenizer, reward: str, reward_kwargs: dict, args, seed: int) -> dict:
    """GRPO (or PPO) on `reward`; the hidden score before and after on the held-out prompts (shared seeds, paired)."""
    common = dict(model=model, tokenizer=tokenizer, max_new_tokens=args.max_new_tokens, prompts="movie_reviews:train")
    env = TextGenVectorEnv(num_envs=8, reward=reward, reward_kwargs=reward_kwargs, **common)
    hidden = TextGenVectorEnv(num_envs=8, reward=HIDDEN, **common)
    torch.manual_seed(seed)
    options: dict = dict(MAIN_JOB_OPTIONS) if args.policy != "tiny" else {}
    if args.agent == "ppo":
        options.pop("scale_rewards", None)  # GRPO's
    options.update(seed=seed, learning_rate=args.learning_rate, kl_coef=args.kl_coef)
    if args.policy != "tiny":
        options["kl_coef_min"] = min(options.get("kl_coef_min", args.kl_coef), args.kl_coef)
    if args.kl_target is not None:
        options["kl_target"] = args.kl_target
    options.update(episodes_per_iteration=16, minibatch_size=8)
    # PPO: the per-token k1 KL in the reward, a value head on the trunk; GRPO: groups of 4 completions per prompt
    agent = GRPO(env, group_size=4, **options) if args.agent == "grpo" else PPO(env, epochs=2, **options)
    settings = dict(samples_per_prompt=args.eval_samples, temperature=agent.config.temperature, seed=seed)
    before = evaluate(agent.policy, hidden, "movie_reviews:eval", **settings)
    started = time.perf_counter()
    agent.learn(args.rl_steps)
    seconds = time.perf_counter() - started
    after = evaluate(agent.policy, hidden, "movie_reviews:eval", **settings)
    gain = paired_gain(before, after)
    return {
        "hidden_before": before.reward.mean,
        "hidden_before_se": before.reward.se,
        "hidden_after": after.reward.mean,
        "hidden_after_se": after.reward.se,
        "hidden_gain": gain.mean,
        "hidden_gain_se": gain.se,
        "prompts": gain.n,
        "kl": after.kl.mean,
        "kl_se": after.kl.se,
        "train_seconds": seconds,
        "tokens": agent.num_timesteps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--answers", default="50,100,200,400", help="N values (comma-separated); the largest is collected"
    )
    parser.add_argument("--rl-for", default="50,400", help="N values whose reward model GRPO trains on")
    parser.add_argument("--trunk", default="tiny", help="'tiny' (the policy's own tiny GPT-2), 'minilm' or a folder")
    parser.add_argument("--max-new-tokens", type=int, default=12)
    parser.add_argument("--held-out-pairs", type=int, default=400)
    parser.add_argument("--rl-steps", type=int, default=6_000, help="generated tokens per GRPO run")
    parser.add_argument(
        "--policy", default="tiny", help="'tiny' (a tiny GPT-2), 'smollm2' (the embedded model) or a model folder"
    )
    parser.add_argument("--learning-rate", type=float, default=None, help="3e-3 (tiny) or the main job's 5e-5")
    parser.add_argument("--kl-coef", type=float, default=None, help="0.05 (tiny) or the main job's 0.03")
    parser.add_argument(
        "--kl-target",
        type=float,
        default=None,
        help="KL per completion (nats) the adaptive coefficient steers toward; default: none (tiny) or the main job's",
    )
    parser.add_argument("--eval-samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--agent", choices=["grpo", "ppo"], default="grpo", help="the RL agent on the reward model")
    parser.add_argument("--output", default="benchmarks/results/rlhf_demo.json")
    args = parser.parse_args()
    sizes = sorted(int(n) for n in args.answers.split(","))
    rl_for = [int(n) for n in args.rl_for.split(",") if n]
    if not set(rl_for) <= set(sizes):
        parser.error(f"Expected --rl-for values among --answers {sizes}, got {rl_for}")
    tiny = args.policy == "tiny"
    if args.learning_rate is None:
        args.learning_rate = 3e-3 if tiny else MAIN_JOB_OPTIONS["learning_rate"]
    if args.kl_coef is None:
        args.kl_coef = 0.05 if tiny else MAIN_JOB_OPTIONS["kl_coef"]
    if args.kl_target is not None and args.kl_target <= 0:
        parser.error(f"Expected --kl-target > 0, got {args.kl_target}")

    def fresh_policy():
        if tiny:
            return tiny_model_and_tokenizer(seed=args.seed)
        return load_model(None if args.policy == "smollm2" else args.policy)

    model, tokenizer = fresh_policy()
    results: dict = {"hidden_reward": HIDDEN, "trunk": args.trunk, "args": vars(args), "reward_models": {}, "rl": {}}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        if args.trunk == "tiny":
            if not tiny:
                parser.error("Expected --trunk minilm or a folder with a --policy other than tiny, got tiny")
            model.save_pretrained(root / "trunk")
            tokenizer.save_pretrained(root / "trunk")
            config = RewardModelConfig(base=str(root / "trunk"), epochs=4, learning_rate=1e-3, seed=args.seed)
        else:
            config = RewardModelConfig(base=None if args.trunk == "minilm" else args.trunk, epochs=3, seed=args.seed)
        log = root / "feedback.jsonl"
        results["collection"] = collect(model, tokenizer, log, sizes[-1], args.max_new_tokens, args.seed)
        print("collected over HTTP:", results["collection"])
        lines = log.read_text().splitlines()
        pairs = held_out_pairs(model, tokenizer, args.held_out_pairs, args.max_new_tokens, args.seed)
        for n in sizes:
            (root / f"log{n}.jsonl").write_text("\n".join(lines[:n]) + "\n")
            report = train_reward_model(root / f"log{n}.jsonl", root / f"rm{n}", config, log=lambda *a: None)
            measured = accuracy(root / f"rm{n}", pairs)
            results["reward_models"][n] = {
                "comparisons": report["comparisons"],
                **measured,
                "split_accuracy": report["eval_accuracy"],
                "seconds": report["seconds"],
            }
            print(
                f"N={n}: {report['comparisons']} comparisons, held-out accuracy {measured['accuracy']:.3f} ± "
                f"{measured['accuracy_se']:.3f} on {measured['pairs']} pairs"
            )
        runs = {f"reward model N={n}": ("reward-model", {"path": str(root / f"rm{n}")}) for n in rl_for}
        runs["hidden reward itself (oracle)"] = (HIDDEN, {})
        for name, (reward, kwargs) in runs.items():
            policy, _ = fresh_policy()
            results["rl"][name] = rl(policy, tokenizer, reward, kwargs, args, args.seed)
            r = results["rl"][name]
            print(
                f"{args.agent.upper()} on {name}: hidden {r['hidden_before']:.3f} -> {r['hidden_after']:.3f}, gain "
                f"{r['hidden_gain']:+.3f} ± {r['hidden_gain_se']:.3f}, KL {r['kl']:.2f} ({r['train_seconds']:.0f} s)"
            )
    results["agent"] = args.agent
    results["policy"] = args.policy
    atomic_write_json(args.output, results)


if __name__ == "__main__":
    main()
