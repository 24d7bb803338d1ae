"""The ``textgen-env`` command: ``train`` (the main job), ``generate`` and ``eval`` for a trained model, ``demo``,
``feedback serve``, ``reward-model train`` and ``serve-env`` (OpenEnv).

Thin argument parsing only; the work is in `agents.app.training`, `agents.evaluation` and the env. An error the user
can fix ends the command with one ``textgen-env: error: ...`` line and exit code 2 (`agents.app.errors`); ``--debug``
shows its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main", "report_summary", "train_flags_table", "train_options", "train_settings"]

_MODEL_HELP = "model name or local path (default: the embedded SmolLM2-135M-Instruct)"


def _agent_options(args: argparse.Namespace) -> dict:
    """The main job's options for ``--agent`` with every agent flag that was given on top."""
    from agents.app.options import agent_option_fields
    from agents.app.settings import main_job_options

    given = {name: getattr(args, name) for name in agent_option_fields() if hasattr(args, name)}
    chosen = {**main_job_options(args.agent, args.env, args.task), **given}
    if "kl_coef_min" in chosen and "kl_coef_min" not in given and chosen.get("kl_coef") is not None:
        chosen["kl_coef_min"] = min(chosen["kl_coef_min"], chosen["kl_coef"])  # a lower --kl-coef lowers the floor
    return chosen


def _train_settings_options() -> list:
    """`TrainSettings` fields as command-line options (``agent_options`` comes from the agent flags instead)."""
    from agents.app.options import field_options
    from agents.app.settings import TrainSettings

    return field_options(TrainSettings, exclude=("agent_options",))


def train_flags_table() -> str:
    """The Markdown table of ``textgen-env train``'s flags, as the docs show it (generated from the fields)."""
    from agents.app.options import agent_option_fields, markdown_table

    rows = [(f"`{o.flag}`", f"`{o.default!r}`", "", o.doc) for o in _train_settings_options()]
    for option, agents in agent_option_fields().values():
        rows.append((f"`{option.flag}`", "agent's", ", ".join(agents), option.doc))
    return markdown_table(rows, ("flag", "default", "agents", "meaning"))


def train_options() -> list:
    """Every setting of ``textgen-env train`` as `OptionField`: the `TrainSettings` fields, then the agent options."""
    from agents.app.options import agent_option_fields

    return [*_train_settings_options(), *(option for option, _ in agent_option_fields().values())]


def _run_config_values(path: str) -> dict:
    """The settings of the run file at `path` (``--config``), checked against ``train``'s options."""
    from agents.app.run_config import load_run_config

    return load_run_config(path, train_options())


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """`argv` parsed; with ``train --config FILE`` the file's values become the defaults, so given flags win."""
    args = parser.parse_args(argv)
    if getattr(args, "config", None) is not None:
        args.parser.set_defaults(**_run_config_values(args.config))
        args = parser.parse_args(argv)
    args.argv = None if argv is None else list(argv)
    return args


def _settings(args: argparse.Namespace):  # -> TrainSettings (imported lazily, as every command's work is)
    from agents.app.settings import TrainSettings

    values = {option.name: getattr(args, option.name) for option in _train_settings_options()}
    try:
        return TrainSettings(**values, agent_options=_agent_options(args))
    except (TypeError, ValueError) as error:
        args.parser.error(str(error))


def train_settings(argv: Sequence[str]):  # -> TrainSettings
    """The settings a ``textgen-env train ...`` command line (`argv` without the program name) would run with."""
    args = _parse(build_parser(), argv)
    if args.command != "train":
        raise ValueError(f"Expected a train command line, got {list(argv)!r}")
    return _settings(args)


def _train(args: argparse.Namespace) -> int:
    from agents.app.training import run_training

    settings = _settings(args)
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return _launch(args.nproc, sys.argv[1:] if args.argv is None else args.argv)
    report = run_training(settings)
    if not report:  # a rank other than 0: rank 0 reports
        return 0
    if "task_eval" in report:
        from agents.app.task_job import task_summary_lines

        print("\n".join(task_summary_lines(report)))
        done = f"{report['timesteps']} tokens in {report['iterations']} iterations"
        print(f"trained {done}: {report['train_seconds']:.0f} s (report.json, samples and model/ in {args.output})")
        return 0
    print(report_summary(report, args.output))
    return 0


def report_summary(report: dict, output: str) -> str:
    """What ``textgen-env train`` prints at the end of a run, from its ``report.json`` (`report`)."""
    n = f"{report['eval_prompts']} prompts x {report['eval_samples_per_prompt']} samples, shared seeds"
    if report.get("settings", {}).get("env") == "dialogue":  # the units are conversations; the reward is the rating
        n = f"{report['eval_prompts']} held-out conversations, shared seeds; reward = mean rating"
    env = report.get("settings", {}).get("env")
    if env == "edit":  # the units are drafts; the reward is the score gain of the edit
        n = f"{report['eval_prompts']} drafts x {report['eval_samples_per_prompt']} edits, shared seeds; reward = gain"
    lines = [
        f"held-out evaluation ({n}):",
        f"  reward before   {report['eval_reward_before']:+.4f} ± {report['eval_reward_before_se']:.4f}",
        f"  reward after    {report['eval_reward_after']:+.4f} ± {report['eval_reward_after_se']:.4f}",
        f"  paired gain     {report['eval_gain']:+.4f} ± {report['eval_gain_se']:.4f}",
        f"  KL (nats)       {report['eval_kl']:.4f} ± {report['eval_kl_se']:.4f}",
        f"  distinct-2      {report['eval_distinct2_before']:.4f} -> {report['eval_distinct2_after']:.4f}",
        f"  length (tokens) {report['eval_length_before']:.2f} -> {report['eval_length_after']:.2f}",
    ]
    for name, row in report.get("eval_gain_by_scenario", {}).items():
        lines.append(
            f"  {name:<15} {row['before']:+.3f} -> {row['after']:+.3f}, gain {row['gain']:+.3f} ± "
            f"{row['gain_se']:.3f} ({row['conversations']} conversations)"
        )
    unit = "edit steps" if env == "edit" else "tokens"
    lines.append(
        f"trained {report['timesteps']} {unit} in {report['iterations']} iterations: {report['train_seconds']:.0f} s "
        f"training, {report['wall_seconds']:.0f} s in all (report, samples, curves.png and model/ in {output})"
    )
    return "\n".join(lines)


def _launch(nproc: int, argv: Sequence[str]) -> int:
    """Run this ``train`` command under torchrun with `nproc` processes on this machine (``--nproc`` removed)."""
    import subprocess

    rest, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            rest.append(item)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    return subprocess.call([*command, "-m", "agents.app.cli", *rest])


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
    from agents.evaluation import evaluate, gain_summary
    from agents.policy import LMPolicy

    if args.task is not None:
        return _eval_task(args)
    if args.env not in ("textgen", "dialogue"):
        args.parser.error(f"Expected --env to be one of ['textgen', 'dialogue'], got {args.env!r}")
    if args.env == "dialogue":
        return _eval_dialogue(args)
    policy, env = _policy_and_env(args, args.reward)
    settings = dict(samples_per_prompt=args.samples, temperature=args.temperature, seed=args.seed)
    result = evaluate(policy, env, args.prompts, **settings)
    summary: dict = result.summary()
    if args.gain:  # the reference itself, on the same prompts and seeds: the paired gain of the trained model
        reference = LMPolicy(env.model, policy.tokenizer, value_head=False, reference=env.model)
        summary = gain_summary(evaluate(reference, env, args.prompts, **settings), result)
    print(json.dumps(summary, indent=2))
    return 0


def _eval_task(args: argparse.Namespace) -> int:
    from agents.app.task_job import eval_task_model

    print(json.dumps(eval_task_model(args), indent=2))
    return 0


def _eval_dialogue(args: argparse.Namespace) -> int:
    from agents.app.training import TrainSettings, dialogue_env
    from agents.evaluation.dialogue import rescore_dialogue_model

    names = ("num_envs", "eval_scenarios", "user", "max_turns", "max_new_tokens")
    try:  # the train command's settings and checks, so a bad value reads as it does there
        settings = TrainSettings(env="dialogue", model=args.reference, **{name: getattr(args, name) for name in names})
        env = dialogue_env(settings, settings.eval_scenarios, settings.model, settings.device)
    except (TypeError, ValueError) as error:
        args.parser.error(str(error))
    options = dict(rounds=args.samples, seed=args.seed, temperature=args.temperature, gain=args.gain)
    print(json.dumps(rescore_dialogue_model(args.model, env, **options), indent=2))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from agents.app.demo import run_demo

    return run_demo(args)


def _add_train_flags(parser: argparse.ArgumentParser) -> None:
    """``train``'s flags: one per `TrainSettings` field and one per agent option, from the dataclass fields."""
    from agents.app.options import add_dataclass_flags, agent_option_fields

    add_dataclass_flags(parser.add_argument_group("run settings"), _train_settings_options())
    group = parser.add_argument_group(
        "agent options", "override the main job's agent options (default: the agent's own; none = None)"
    )
    for option, agents in agent_option_fields().values():
        text = option.doc if len(agents) == 4 else f"[{', '.join(agents)}] {option.doc}"
        add_dataclass_flags(group, [dataclasses.replace(option, doc=text)], absent_when_not_given=True)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``textgen-env`` command."""
    from agents.app.errors import add_debug_flag
    from agents.app.options import add_dataclass_flags
    from textgen_env import __version__

    parser = argparse.ArgumentParser(prog="textgen-env", description=__doc__)
    parser.add_argument("--version", action="version", version=f"textgen-env {__version__}")
    add_debug_flag(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train an LM with RL through the env loop (the main job)")
    add_debug_flag(train)
    _add_train_flags(train)
    train.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="a named run: a TOML file of these settings (configs/*.toml); flags given here override its values",
    )
    train.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="data-parallel processes on this machine: runs this command under torchrun (see agents.distributed)",
    )
    train.set_defaults(handler=_train, parser=train)

    for name, handler, text in (
        ("generate", _generate, "sample completions of a prompt from a trained model"),
        ("eval", _eval, "mean reward, KL to the reference and distinct-2 of a trained model on held-out prompts"),
    ):
        sub = commands.add_parser(name, help=text)
        add_debug_flag(sub)
        sub.add_argument("--model", required=True, help="trained model folder (OUTPUT/model of a train run)")
        sub.add_argument("--reference", default=None, help=f"reference for the KL; {_MODEL_HELP}")
        sub.add_argument("--max-new-tokens", type=int, default=20)
        sub.add_argument("--temperature", type=float, default=1.0)
        sub.add_argument("--seed", type=int, default=0)
        sub.set_defaults(handler=handler, parser=sub)
        if name == "generate":
            sub.add_argument("--prompt", required=True)
            sub.add_argument("--num", type=int, default=3, help="completions to sample")
        else:
            sub.add_argument("--reward", default="sentiment")
            text = "completions per prompt (shared seeds); with --env dialogue, rounds of --num-envs conversations"
            sub.add_argument("--samples", type=int, default=8, help=text)
            sub.add_argument("--gain", action="store_true", help="also evaluate the reference: paired reward gain")
            sub.add_argument("--prompts", default="movie_reviews:eval")
            tasks = sub.add_argument_group(
                "tasks (--task): held-out accuracy, as at the end of textgen-env train --task"
            )
            tasks.add_argument("--task", default=None, help="task name (textgen_env.tasks.available_tasks())")
            tasks.add_argument("--task-kwargs", default=None, help="the task's arguments as a JSON object")
            tasks.add_argument("--difficulties", default=None, help="comma-separated levels (default: the easiest)")
            tasks.add_argument("--items", type=int, default=64, help="held-out items per level")
            tasks.add_argument(
                "--tools", default=None, help="comma-separated built-in tools, as the model was trained with"
            )
            tasks.add_argument("--output", default=None, help="also write the result to this report.json path")
            dialogue = sub.add_argument_group("conversations (--env dialogue), as textgen-env train takes them")
            names = ("env", "eval_scenarios", "user", "max_turns", "num_envs")
            add_dataclass_flags(dialogue, [o for o in _train_settings_options() if o.name in names])

    demo = commands.add_parser("demo", help="generate through the env loop with the untrained model, print rewards")
    add_debug_flag(demo)
    demo.add_argument("--model", default=None, help=_MODEL_HELP)
    demo.add_argument("--prompts", default="movie_reviews:eval", help="prompt set, file or name[:split]")
    demo.add_argument("--reward", default="sentiment", help="registered reward name")
    demo.add_argument("--num-envs", type=int, default=4)
    demo.add_argument("--episodes", type=int, default=8)
    demo.add_argument("--max-new-tokens", type=int, default=24)
    demo.add_argument("--temperature", type=float, default=1.0)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(handler=_demo)

    from agents.app.feedback_cli import add_feedback_commands

    add_feedback_commands(commands)  # feedback serve, reward-model train

    from agents.app.serve_env_cli import add_serve_env_command

    add_serve_env_command(commands)  # serve-env (OpenEnv)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``textgen-env`` console script.

    A user error (`agents.app.errors.is_user_error`: the package's "Expected ..." refusals, gymnasium's errors, a
    diverged run, a full or read-only disk) prints one ``textgen-env: error: ...`` line and returns 2; bugs, and
    every error under ``--debug`` or ``TEXTGEN_ENV_DEBUG=1``, raise with their traceback.
    """
    from agents.app.errors import EXIT_USER_ERROR, debug_requested, is_user_error, user_message

    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors exit here; a bad run file is a user error below
    try:
        args = _parse(parser, argv)
        return int(args.handler(args))
    except Exception as error:
        if debug_requested(args) or not is_user_error(error):
            raise
        print(f"textgen-env: error: {user_message(error)}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
