"""The ``textgen-env`` command: ``train`` (the main job), ``generate`` and ``eval`` for a trained model, ``demo``.

Thin argument parsing only; the work is in `agents.training`, `agents.evaluation` and the env.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

_MODEL_HELP = "model name or local path (default: the embedded SmolLM2-135M-Instruct)"


def _agent_options(args: argparse.Namespace) -> dict:
    options = {
        "learning_rate": args.learning_rate,
        "kl_coef": args.kl_coef,
        "kl_target": args.kl_target,
        "lora_rank": args.lora_rank,
        "episodes_per_iteration": args.episodes_per_iteration,
        "minibatch_size": args.minibatch_size,
        "epochs": args.epochs,
        "temperature": args.temperature,
    }
    from agents.training import MAIN_JOB_OPTIONS

    chosen = {**MAIN_JOB_OPTIONS, **{k: v for k, v in options.items() if v is not None}}
    chosen["kl_coef_min"] = min(chosen["kl_coef_min"], chosen["kl_coef"])  # a lower --kl-coef lowers the floor too
    return chosen


def _train(args: argparse.Namespace) -> int:
    from agents.training import TrainSettings, run_training

    settings = TrainSettings(
        agent=args.agent,
        reward=args.reward,
        model=args.model,
        prompts=args.prompts,
        eval_prompts=args.eval_prompts,
        steps=args.steps,
        max_minutes=args.max_minutes,
        seed=args.seed,
        output=args.output,
        resume=args.resume,
        num_envs=args.num_envs,
        max_new_tokens=args.max_new_tokens,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        tensorboard=not args.no_tensorboard,
        agent_options=_agent_options(args),
    )
    report = run_training(settings)
    keys = ("eval_reward_before", "eval_reward_after", "eval_kl", "eval_distinct2_before", "eval_distinct2_after")
    print("\n".join(f"{key}: {report[key]:.4f}" for key in keys))
    print(f"wall_seconds: {report['wall_seconds']:.0f}  (report, samples, curves.png and model/ in {args.output})")
    return 0


def _policy_and_env(args: argparse.Namespace, reward: str):
    from agents.policy import LMPolicy
    from textgen_env import TextGenVectorEnv, load_model

    env = TextGenVectorEnv(
        num_envs=1, model=args.reference, reward=reward, max_new_tokens=args.max_new_tokens, kl_coef=0.0
    )
    model, tokenizer = load_model(args.model)
    return LMPolicy(model, tokenizer, value_head=False, reference=env.model), env


def _generate(args: argparse.Namespace) -> int:
    import torch

    from agents.evaluation import generate_completions

    policy, env = _policy_and_env(args, "length")
    generator = torch.Generator().manual_seed(args.seed)
    prompts = [args.prompt] * args.num
    for _, completion in generate_completions(policy, env, prompts, temperature=args.temperature, generator=generator):
        print(f"{args.prompt}{policy.tokenizer.decode(completion, skip_special_tokens=True)}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from agents.evaluation import evaluate

    policy, env = _policy_and_env(args, args.reward)
    result = evaluate(policy, env, args.prompts, temperature=args.temperature, seed=args.seed)
    summary = {"reward_mean": result.reward_mean, "kl_mean": result.kl_mean, "distinct2": result.distinct2}
    print(json.dumps(summary, indent=2))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from agents.demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``textgen-env`` command."""
    parser = argparse.ArgumentParser(prog="textgen-env", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train an LM with RL through the env loop (the main job)")
    train.add_argument("--agent", default="ppo", help="ppo | reinforce | grpo | dqn")
    train.add_argument("--reward", default="sentiment", help="registered reward name")
    train.add_argument("--model", default=None, help=_MODEL_HELP)
    train.add_argument("--prompts", default="movie_reviews", help="training prompts: built-in set or file")
    train.add_argument("--eval-prompts", default="movie_reviews:eval", help="held-out prompts")
    train.add_argument("--steps", type=int, default=30_000, help="budget in generated tokens")
    train.add_argument("--max-minutes", type=float, default=8.0, help="wall-clock budget of the training loop")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--output", default="runs/latest", help="output folder")
    train.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint")
    train.add_argument("--num-envs", type=int, default=8)
    train.add_argument("--max-new-tokens", type=int, default=20)
    train.add_argument("--eval-every", type=int, default=10, help="iterations between quick evaluations (0: off)")
    train.add_argument("--checkpoint-every", type=int, default=20, help="iterations between checkpoints")
    train.add_argument("--no-tensorboard", action="store_true")
    train.add_argument("--learning-rate", type=float, default=None)
    train.add_argument("--kl-coef", type=float, default=None)
    train.add_argument("--kl-target", type=float, default=None)
    train.add_argument("--lora-rank", type=int, default=None)
    train.add_argument("--episodes-per-iteration", type=int, default=None)
    train.add_argument("--minibatch-size", type=int, default=None)
    train.add_argument("--epochs", type=int, default=None)
    train.add_argument("--temperature", type=float, default=None)
    train.set_defaults(handler=_train)

    for name, handler, text in (
        ("generate", _generate, "sample completions of a prompt from a trained model"),
        ("eval", _eval, "mean reward, KL to the reference and distinct-2 of a trained model on held-out prompts"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--model", required=True, help="trained model folder (OUTPUT/model of a train run)")
        sub.add_argument("--reference", default=None, help=f"reference for the KL; {_MODEL_HELP}")
        sub.add_argument("--max-new-tokens", type=int, default=20)
        sub.add_argument("--temperature", type=float, default=1.0)
        sub.add_argument("--seed", type=int, default=0)
        sub.set_defaults(handler=handler)
        if name == "generate":
            sub.add_argument("--prompt", required=True)
            sub.add_argument("--num", type=int, default=3, help="completions to sample")
        else:
            sub.add_argument("--reward", default="sentiment")
            sub.add_argument("--prompts", default="movie_reviews:eval")

    demo = commands.add_parser("demo", help="generate through the env loop with the untrained model, print rewards")
    demo.add_argument("--model", default=None, help=_MODEL_HELP)
    demo.add_argument("--prompts", default="movie_reviews:eval", help="prompt set, file or name[:split]")
    demo.add_argument("--reward", default="sentiment", help="registered reward name")
    demo.add_argument("--num-envs", type=int, default=4)
    demo.add_argument("--episodes", type=int, default=8)
    demo.add_argument("--max-new-tokens", type=int, default=24)
    demo.add_argument("--temperature", type=float, default=1.0)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``textgen-env`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
