"""Issue 26's demonstration: SmolLM2-135M-Instruct on an arithmetic level it cannot do in its head, with and without
the calculator, before and after RL.

Rows (every one scored by `agents.evaluation.evaluate_task` on the same held-out items, samples and seed; tool use
and calls per completion where the env has the calculator; SE over items):

* ``untrained, no tools`` and ``untrained, calculator``: the embedded model as it is;
* ``warmed up, calculator``: after ``--warmup-demos`` scripted demonstrations (`agents.warmup`), RL's start;
* ``after RL, calculator``: ``textgen-env train --task arithmetic --tools calculator --warmup-demos N`` (GRPO, the
  task job's options), paired with the warmed-up row;
* ``after RL, no tools``: the same RL budget without tools, paired with the untrained row.

    python benchmarks/tools_demo.py --difficulty 4 --demos 64 --steps 6000
    python benchmarks/tools_demo.py --smoke          # the tiny tool model, seconds

Every row's KL is to the untrained model (the warmed-up model is the RL run's own reference, so its training KL is
smaller). Writes ``--output`` (default ``benchmarks/results/tools_demo.json``).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.app.settings import TOOL_PROMPT_TOKENS, TrainSettings
from agents.app.training import run_training
from agents.evaluation.tasks import evaluate_task, held_out_items, paired_task_gain
from agents.policy import LMPolicy
from textgen_env import TextGenVectorEnv, load_model
from textgen_env.models import default_model_path
from textgen_env.storage import atomic_write_json
from textgen_env.testing import tiny_tool_model_and_tokenizer


def evaluate_model(model_path: str, args: argparse.Namespace, tools: bool) -> Any:
    model, tokenizer = load_model(model_path)
    reference, _ = load_model(args.model)
    env = TextGenVectorEnv(
        num_envs=8,
        model=reference,
        tokenizer=tokenizer,
        task="arithmetic",
        difficulty=args.difficulty,
        tools=["calculator"] if tools else [],
        max_new_tokens=args.max_new_tokens,
        max_prompt_tokens=TOOL_PROMPT_TOKENS,
    )
    items = held_out_items(env.task, difficulties=[args.difficulty], items_per_difficulty=args.items, seed=0)
    policy = LMPolicy(model, tokenizer, value_head=False, reference=reference)
    return evaluate_task(policy, env, items, samples_per_item=args.samples, seed=0)


def train(args: argparse.Namespace, output: Path, tools: bool) -> dict[str, Any]:
    settings = TrainSettings(
        model=args.model,
        task="arithmetic",
        difficulty=str(args.difficulty),
        tools="calculator" if tools else None,
        warmup_demos=args.demos if tools else 0,
        warmup_epochs=args.warmup_epochs,
        warmup_learning_rate=args.warmup_lr,
        max_new_tokens=args.max_new_tokens,
        steps=args.steps,
        eval_items=1,  # the runs' own evaluation is cut short: every row below is scored the same way
        eval_samples_per_prompt=1,
        output=str(output),
        tensorboard=False,
        checkpoint_every=10**9,
    )
    return run_training(settings)


def row(name: str, result: Any, baseline: Any = None) -> dict[str, Any]:
    summary = result.summary()
    out = {"row": name, **{k: summary[k] for k in summary if k != "by_difficulty"}}
    if baseline is not None:
        gain = paired_task_gain(baseline, result)
        out["gain"] = {k: v for k, v in gain.items() if k != "by_difficulty"}
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder (default: the embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--difficulty", type=int, default=4, help="arithmetic level (4: three two-digit terms)")
    parser.add_argument("--demos", type=int, default=64, help="warm-up demonstrations")
    parser.add_argument("--warmup-epochs", type=int, default=3)
    parser.add_argument("--warmup-lr", type=float, default=1e-4)
    parser.add_argument("--steps", type=int, default=6_000, help="RL budget: generated tokens")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--items", type=int, default=64, help="held-out items")
    parser.add_argument("--samples", type=int, default=4, help="samples per held-out item")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "tools_demo.json")
    parser.add_argument("--smoke", action="store_true", help="the tiny tool model, tiny budgets")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tools_demo-") as folder:
        work = Path(folder)
        if args.smoke:
            model, tokenizer = tiny_tool_model_and_tokenizer()
            model.save_pretrained(work / "tiny")
            tokenizer.save_pretrained(work / "tiny")
            args.model, args.difficulty, args.demos, args.steps = str(work / "tiny"), 1, 8, 64
            args.max_new_tokens, args.items, args.samples = 100, 3, 2
        args.model = args.model or str(default_model_path())
        untrained_plain = evaluate_model(args.model, args, tools=False)
        untrained_tools = evaluate_model(args.model, args, tools=True)
        reports = {"tools": train(args, work / "tools", tools=True), "plain": train(args, work / "plain", False)}
        warmed = evaluate_model(str(work / "tools" / "warmup"), args, tools=True)
        after_tools = evaluate_model(str(work / "tools" / "model"), args, tools=True)
        after_plain = evaluate_model(str(work / "plain" / "model"), args, tools=False)
    rows = [
        row("untrained, no tools", untrained_plain),
        row("untrained, calculator", untrained_tools),
        row("warmed up, calculator", warmed, untrained_tools),
        row("after RL, calculator", after_tools, warmed),
        row("after RL, no tools", after_plain, untrained_plain),
    ]
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    kept = ("train_seconds", "timesteps", "warmup")
    runs = {name: {key: report[key] for key in kept if key in report} for name, report in reports.items()}
    atomic_write_json(args.output, {"settings": settings, "rows": rows, "runs": runs})
    for r in rows:
        tools = f", tool use {r['tool_use']:.2f}, calls {r['tool_calls']:.2f}" if "tool_use" in r else ""
        print(
            f"{r['row']:<24} accuracy {r['accuracy']:.3f} ± {r['accuracy_se']:.3f}, greedy {r['greedy_accuracy']:.3f}"
            f", KL {r['kl']:.2f}{tools}"
        )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
