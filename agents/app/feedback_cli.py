"""``textgen-env feedback serve`` (the feedback web page) and ``textgen-env reward-model train`` (a Bradley-Terry
reward model from its log): the argument parsing; the work is in `textgen_env.feedback` and `agents.reward_model`."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_feedback_commands"]


def _serve(args: argparse.Namespace) -> int:
    import textgen_env.feedback as feedback
    from textgen_env.feedback.log import open_log
    from textgen_env.feedback.server import check_host

    try:  # the address and the log first, before minutes of model loading
        check_host(args.host, args.allow_remote)
        open_log(args.log)
    except (ValueError, OSError) as error:
        args.parser.error(str(error))
    board = feedback.make_board(
        args.log,
        model=args.model,
        prompts=args.prompts,
        mode=args.mode,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        seed=args.seed,
    )
    feedback.serve(
        board, host=args.host, port=args.port, allow_remote=args.allow_remote, allowed_hosts=args.allowed_host
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from agents.app.options import field_options
    from agents.app.run_folder import check_output_location
    from agents.reward_model import REWARD_MODEL_KIND, RewardModelConfig, train_reward_model
    from textgen_env.storage import check_replaceable

    values = {option.name: getattr(args, option.name) for option in field_options(RewardModelConfig)}
    try:  # the output first: a folder the package did not write is refused before minutes of training
        check_output_location(args.output)
        check_replaceable(args.output, REWARD_MODEL_KIND, overwrite=args.overwrite)
    except (ValueError, FileExistsError) as error:
        args.parser.error(str(error))
    try:
        config = RewardModelConfig(**values)
        report = train_reward_model(args.data, args.output, config, overwrite=args.overwrite)
    except (TypeError, ValueError, FileNotFoundError) as error:
        args.parser.error(str(error))
    summary = {k: report[k] for k in ("comparisons", "train_comparisons", "eval_comparisons", "eval_prompts")}
    summary.update({k: round(report[k], 4) for k in ("eval_accuracy", "eval_accuracy_se", "eval_loss")})
    summary.update(train_accuracy=round(report["train_accuracy"], 4), seconds=round(report["seconds"], 1))
    print(json.dumps(summary, indent=2))
    print(f"reward model saved to {args.output}: use reward='reward-model', reward_kwargs={{'path': {args.output!r}}}")
    return 0


def add_feedback_commands(commands: Any) -> None:
    """Add ``feedback`` and ``reward-model`` to the ``textgen-env`` subcommands."""
    from agents.app.errors import add_debug_flag
    from agents.app.options import add_dataclass_flags, field_options
    from agents.reward_model import RewardModelConfig

    feedback = commands.add_parser("feedback", help="collect preferences and ratings from people in a web page")
    actions = feedback.add_subparsers(dest="feedback_command", required=True)
    serve = actions.add_parser("serve", help="serve the feedback page on this machine (127.0.0.1)")
    serve.add_argument("--log", required=True, help="JSONL log every answer is appended to at once")
    serve.add_argument("--model", default=None, help="model whose completions are shown (default: embedded SmolLM2)")
    serve.add_argument("--prompts", default="movie_reviews", help="prompt set, file or name[:split]")
    serve.add_argument("--mode", choices=("pair", "rating", "mixed"), default="mixed", help="kind of questions")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other machines can reach (warns; they need the token in the printed URL)",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a further name browsers reach the page by (the Host header), e.g. this machine's network name",
    )
    serve.add_argument("--max-new-tokens", type=int, default=24)
    serve.add_argument("--temperature", type=float, default=1.0)
    serve.add_argument("--seed", type=int, default=0)
    serve.set_defaults(handler=_serve, parser=serve)

    reward_model = commands.add_parser("reward-model", help="train a Bradley-Terry reward model from a feedback log")
    reward_actions = reward_model.add_subparsers(dest="reward_model_command", required=True)
    train = reward_actions.add_parser("train", help="train on a feedback log, report held-out pairwise accuracy")
    train.add_argument("--data", required=True, help="feedback log (JSONL of preferences and/or ratings)")
    train.add_argument("--output", required=True, help="folder the reward model is saved to (Hugging Face format)")
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --output even when it holds files this package did not write (refused by default)",
    )
    add_debug_flag(train)
    add_dataclass_flags(train.add_argument_group("training settings"), field_options(RewardModelConfig))
    train.set_defaults(handler=_train, parser=train)
