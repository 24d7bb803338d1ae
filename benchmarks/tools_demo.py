"""Issue 26's demonstration: SmolLM2-135M-Instruct on an arithmetic level it cannot do in its head, with and without
the calculator, before and after RL.

Rows (every one scored by `agents.evaluation.evaluate_task` on the same held-out items, samples and seed; tool use
and calls per completion where the env has the calculator; SE over items):

* ``untrained, no tools`` and ``untrained, calculator``: the embedded model as it is;
* ``warmed up, calculator``: after ``--warmup-demos`` scripted demonstrations (`agents.warmup`), RL's start;
* ``after RL, calculator``: ``textgen-env train --task arithmetic --tools calculator --warmup-demos N`` (GRPO, the
  task job's options), paired with the warmed-up row;
* ``after RL, no tools``: the same RL budget without tools, paired with the untrained row.

    python benchmarks/tools_demo.py                  # level 4, 16 demonstrations, one epoch, 6,000 RL tokens
    python benchmarks/tools_demo.py --smoke          # the tiny tool model, seconds

Every row's KL is to the untrained model (the warmed-up model is the RL run's own reference, so its training KL is
smaller). Writes ``--output`` (default ``benchmarks/results/tools_demo.json``), with every evaluation item by item.

    python benchmarks/tools_demo.py --add-seed 1    # one more training seed of the calculator run (warm-up and RL)

``--add-seed`` keeps the output's rows, runs the warm-up and RL with tools again at that seed and appends its two
rows under ``more_seeds`` (paired with the stored untrained evaluation, which it re-runs and checks when the file
does not hold it); the RL run without tools is not repeated.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from agents.app.settings import TOOL_PROMPT_TOKENS, TrainSettings
from agents.app.training import run_training
from agents.evaluation.tasks import TaskEvalResult, evaluate_task, held_out_items, paired_task_gain
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
        seed=args.seed,
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


SHARED = ("model", "difficulty", "demos", "warmup_epochs", "warmup_lr", "steps", "max_new_tokens", "items", "samples")
"""Settings that an added seed must share with the stored rows."""


def add_seed(args: argparse.Namespace, work: Path) -> None:
    """``--add-seed``: the calculator run at one more training seed, appended to the stored output."""
    data = json.loads(args.output.read_text(encoding="utf-8"))
    stored = data["settings"]
    differ = [k for k in SHARED if stored[k] != getattr(args, k) and not (k == "model" and args.smoke)]  # temp
    seeds = [stored["seed"], *(extra["seed"] for extra in data.get("more_seeds", []))]
    if differ or args.seed in seeds:
        raise SystemExit(f"Expected the stored settings and a new seed (have {seeds}), got different {differ}")
    if "untrained, calculator" in data.get("evaluations", {}):
        untrained = TaskEvalResult(**data["evaluations"]["untrained, calculator"])
    else:  # an older file without the evaluations: the same evaluation again (same items, samples and seed)
        untrained = evaluate_model(args.model, args, tools=True)
        again = row("untrained, calculator", untrained)
        if again != data["rows"][1]:
            raise SystemExit(f"Expected the stored untrained evaluation again, got {again} for {data['rows'][1]}")
    report = train(args, work / "tools", tools=True)
    warmed = evaluate_model(str(work / "tools" / "warmup"), args, tools=True)
    after = evaluate_model(str(work / "tools" / "model"), args, tools=True)
    rows = [row("warmed up, calculator", warmed, untrained), row("after RL, calculator", after, warmed)]
    rows[1]["gain_over_untrained"] = row("after", after, untrained)["gain"]
    kept = {key: report[key] for key in ("train_seconds", "timesteps", "warmup") if key in report}
    data.setdefault("more_seeds", []).append({"seed": args.seed, "rows": rows, "run": kept})
    atomic_write_json(args.output, data)
    print_rows(rows)


def print_rows(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        tools = f", tool use {r['tool_use']:.2f}, calls {r['tool_calls']:.2f}" if "tool_use" in r else ""
        print(
            f"{r['row']:<24} accuracy {r['accuracy']:.3f} ± {r['accuracy_se']:.3f}, greedy {r['greedy_accuracy']:.3f}"
            f", KL {r['kl']:.2f}{tools}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder (default: the embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--difficulty", type=int, default=4, help="arithmetic level (4: three two-digit terms)")
    parser.add_argument("--demos", type=int, default=16, help="warm-up demonstrations")
    parser.add_argument("--warmup-epochs", type=int, default=1)
    parser.add_argument("--warmup-lr", type=float, default=1e-4)
    parser.add_argument("--steps", type=int, default=6_000, help="RL budget: generated tokens")
    parser.add_argument("--max-new-tokens", type=int, default=72, help="a call, its result and the answer take ~45")
    parser.add_argument("--items", type=int, default=40, help="held-out items")
    parser.add_argument("--samples", type=int, default=3, help="samples per held-out item")
    parser.add_argument("--seed", type=int, default=0, help="training seed (warm-up items and RL)")
    parser.add_argument("--add-seed", type=int, help="run the calculator run at this seed, append it to --output")
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
        if args.add_seed is not None:
            args.seed = args.add_seed
            add_seed(args, work)
            return
        evaluations = {"untrained, no tools": evaluate_model(args.model, args, tools=False)}
        evaluations["untrained, calculator"] = evaluate_model(args.model, args, tools=True)
        reports = {"tools": train(args, work / "tools", tools=True), "plain": train(args, work / "plain", False)}
        evaluations["warmed up, calculator"] = evaluate_model(str(work / "tools" / "warmup"), args, tools=True)
        evaluations["after RL, calculator"] = evaluate_model(str(work / "tools" / "model"), args, tools=True)
        evaluations["after RL, no tools"] = evaluate_model(str(work / "plain" / "model"), args, tools=False)
    baselines = {
        "warmed up, calculator": "untrained, calculator",
        "after RL, calculator": "warmed up, calculator",
        "after RL, no tools": "untrained, no tools",
    }
    rows = [
        row(name, result, evaluations[baselines[name]] if name in baselines else None)
        for name, result in evaluations.items()
    ]
    rows[3]["gain_over_untrained"] = row(
        "after", evaluations["after RL, calculator"], evaluations["untrained, calculator"]
    )["gain"]
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    kept = ("train_seconds", "timesteps", "warmup")
    runs = {name: {key: report[key] for key in kept if key in report} for name, report in reports.items()}
    stored = {name: asdict(result) for name, result in evaluations.items()}
    atomic_write_json(args.output, {"settings": settings, "rows": rows, "runs": runs, "evaluations": stored})
    print_rows(rows)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
