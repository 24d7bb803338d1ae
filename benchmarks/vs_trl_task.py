"""The task main job against TRL's ``GRPOTrainer`` on a checkable task: same model, items, budget and evaluator.

The task counterpart of ``benchmarks/vs_trl.py`` (which it reuses: runs, token budget, summaries). For every training
seed, ours runs ``textgen-env train --task TASK`` (the task job: `TASK_JOB_SETTINGS`, `TASK_JOB_OPTIONS`; only the
learning rate, the seed and the budget set here) and TRL's ``GRPOTrainer`` trains on the same task's ``train`` items
(the prompt texts our env renders for those items, and ``textgen_env.integrations.trl.TRLTask``'s reward function of
the task's ``correct`` score) with the same shape: groups of ``group_size`` completions
of one item, 16 completions per rollout, minibatches of 8, one epoch, clip 0.2, the task job's fixed KL coefficient as
TRL's ``beta``, ``max_new_tokens`` per completion, rewards centred in their group and not divided by its std, bfloat16
autocast over float32 weights, AdamW at a constant learning rate. Both stop at the end of the rollout that passes
``--tokens`` completion tokens.

Every trained model, and the untrained one, goes through one evaluator: ``agents.evaluation.evaluate_task`` on the
task's held-out ``eval`` items of the trained level (never trained on: `textgen_env.tasks.TaskSampler` splits by
content), ``--samples-per-item`` samples at T = 1 and one greedy completion per item, one evaluation seed: accuracy
at T = 1 and greedy, the format rate and the exact KL to the starting model, each paired item by item with the
untrained model's (SE over items); the summary gives the mean ± SE over training seeds.

Install and run (3 seeds x 2 frameworks, each 3,000 tokens; about half an hour on a 2-core CPU)::

    pip install -e ".[benchmark]"
    python benchmarks/vs_trl_task.py                      # arithmetic, SmolLM2-135M-Instruct
    python benchmarks/vs_trl_task.py --resume             # keep the rows already in --output, run the rest
    python benchmarks/vs_trl_task.py --smoke              # the tiny test model, seconds per run

Rows go to ``--output`` (default ``benchmarks/results/vs_trl_task.json``), rewritten atomically after every run.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the models are local; never wait on the network

import argparse
import dataclasses
import gc
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel
from vs_trl import MINIBATCH, CountingTokens, Run, TokenBudget, _loop_seconds, base_model_path, resumed, summarize

from agents.app.task_job import TASK_JOB_OPTIONS, TASK_JOB_SETTINGS
from agents.app.training import TrainSettings, run_training
from agents.evaluation.tasks import TaskEvalResult, evaluate_task, held_out_items, paired_task_gain
from agents.policy import LMPolicy
from textgen_env import TextGenVectorEnv, load_model
from textgen_env.integrations.trl import TRLTask
from textgen_env.models import DEFAULT_MODEL
from textgen_env.storage import atomic_write_json
from textgen_env.tasks import TaskSampler

GROUP_SIZE = TASK_JOB_OPTIONS["group_size"]
COMPLETIONS_PER_ROLLOUT = 16  # GRPOConfig's episodes_per_iteration, which the task job keeps
MAX_NEW_TOKENS = TASK_JOB_SETTINGS["max_new_tokens"]
SLOTS = TASK_JOB_SETTINGS["num_envs"]


@dataclasses.dataclass
class TaskEvaluator:
    """One evaluation for every model: the same held-out items, samples, seed, env and frozen reference."""

    reference: PreTrainedModel
    env: TextGenVectorEnv
    items: list[Any]
    samples_per_item: int
    seed: int

    def __call__(self, model: PreTrainedModel) -> TaskEvalResult:
        policy = LMPolicy(model, self.env.tokenizer, value_head=False, reference=self.reference)
        return evaluate_task(policy, self.env, self.items, samples_per_item=self.samples_per_item, seed=self.seed)


def make_evaluator(model_path: str, args: argparse.Namespace) -> TaskEvaluator:
    reference, tokenizer = load_model(model_path, device=args.device)
    reference.requires_grad_(False)
    env = TextGenVectorEnv(
        num_envs=1, model=reference, tokenizer=tokenizer, task=args.task, max_new_tokens=MAX_NEW_TOKENS
    )
    level = env.task.difficulties[0]  # the task job's level (difficulty None: the easiest)
    items = held_out_items(env.task, difficulties=[level], items_per_difficulty=args.eval_items, seed=args.seed)
    return TaskEvaluator(reference, env, items, args.samples_per_item, args.seed)


def result_row(run: Run, seconds: float, tokens: int, before: TaskEvalResult, after: TaskEvalResult) -> dict:
    gain, b, a = paired_task_gain(before, after), before.summary(), after.summary()
    return {
        "framework": "trl" if run.variant == "trl" else "ours",
        "variant": run.variant,
        "lr": run.lr,
        "seed": run.seed,
        "train_seconds": seconds,
        "train_tokens": int(tokens),
        "train_tokens_per_second": tokens / seconds if seconds > 0 else float("nan"),
        "items": a["items"],
        "samples_per_item": a["samples_per_item"],
        "accuracy_before": b["accuracy"],
        "accuracy_after": a["accuracy"],
        "reward_gain": gain["accuracy"],  # the accuracy at T = 1 (`summarize` reads reward_gain and kl)
        "reward_gain_se": gain["accuracy_se"],
        "greedy_before": b["greedy_accuracy"],
        "greedy_after": a["greedy_accuracy"],
        "greedy_gain": gain["greedy_accuracy"],
        "greedy_gain_se": gain["greedy_accuracy_se"],
        "format_after": a["format_rate"],
        "kl": a["kl"],
        "kl_se": a["kl_se"],
        "distinct2_after": float("nan"),
    }


def train_ours(model_path: str, run: Run, args: argparse.Namespace, work: Path) -> tuple[PreTrainedModel, float, int]:
    """The task main job with `run`'s learning rate and seed for ``args.tokens``; its own evaluation cut to 1 item."""
    output = work / f"ours-{run.lr:g}-{run.seed}"
    settings = TrainSettings(
        model=model_path,
        task=args.task,
        steps=args.tokens,
        seed=run.seed,
        output=str(output),
        eval_items=1,
        eval_samples_per_prompt=1,
        checkpoint_every=10**9,
        tensorboard=False,
        agent_options={**TASK_JOB_OPTIONS, "learning_rate": run.lr},
    )
    called_at = time.time()
    report = run_training(settings)
    seconds = _loop_seconds(output, called_at)  # the training loop, without the final checkpoint (TRL saves none)
    model, _ = load_model(output / "model", device=args.device)
    shutil.rmtree(output, ignore_errors=True)
    return model, seconds, int(report["timesteps"])


def train_trl(model_path: str, run: Run, args: argparse.Namespace, work: Path) -> tuple[PreTrainedModel, float, int]:
    """TRL's GRPOTrainer on the task's train items, the task job's shape, for ``args.tokens``."""
    try:
        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer
    except ImportError as error:
        raise SystemExit(f'This benchmark needs TRL: pip install -e ".[benchmark]" ({error})') from error
    model, tokenizer = load_model(model_path)
    probe = TextGenVectorEnv(num_envs=1, model=model, tokenizer=tokenizer, task=args.task)
    task = probe.task
    sampler = TaskSampler(task, seed=run.seed, split="train", difficulty=task.difficulties[0])
    items = [sampler.next() for _ in range(4 * args.tokens // MAX_NEW_TOKENS)]
    trl_task = TRLTask(task, items)
    # the very prompt texts our env renders (chat template when the tokenizer has one), with the rows' items
    prompts = [probe.task_prompt(item) for item in items]
    dataset = Dataset.from_dict({"prompt": prompts, "item_index": list(range(len(items)))})
    reward = CountingTokens(trl_task.reward_functions({"correct": 1.0})[0])
    budget = TokenBudget(reward, args.tokens, COMPLETIONS_PER_ROLLOUT // MINIBATCH)
    config = GRPOConfig(
        output_dir=str(work / f"trl-{run.lr:g}-{run.seed}"),
        learning_rate=run.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        optim="adamw_torch",
        weight_decay=0.0,
        max_grad_norm=1.0,
        max_steps=10**9,  # the TokenBudget callback stops it
        per_device_train_batch_size=MINIBATCH,
        gradient_accumulation_steps=1,
        steps_per_generation=COMPLETIONS_PER_ROLLOUT // MINIBATCH,
        num_iterations=1,
        num_generations=GROUP_SIZE,
        epsilon=0.2,
        beta=TASK_JOB_OPTIONS["kl_coef"],
        max_completion_length=MAX_NEW_TOKENS,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        disable_dropout=True,
        activation_checkpointing=False,
        bf16=TASK_JOB_OPTIONS["bf16_autocast"],
        scale_rewards=TASK_JOB_OPTIONS["scale_rewards"],
        use_cpu=args.device == "cpu",
        seed=run.seed,
        report_to="none",
        logging_strategy="no",
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[budget],
    )
    trainer.train()
    trained = trainer.accelerator.unwrap_model(trainer.model).to(args.device).eval()
    del trainer
    return trained, budget.elapsed, reward.tokens


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder (default: the embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--task", default="arithmetic", help="a task of textgen_env.tasks.available_tasks()")
    parser.add_argument("--tokens", type=int, default=TASK_JOB_SETTINGS["steps"], help="completion tokens per run")
    parser.add_argument("--lr", type=float, default=TASK_JOB_OPTIONS["learning_rate"], help="both frameworks'")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--eval-items", type=int, default=64, help="held-out items (a level may have fewer)")
    parser.add_argument("--samples-per-item", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="the evaluation's seed (one for every model)")
    parser.add_argument("--device", default="cpu", help="TRL and evaluation device (the main job uses CPU)")
    parser.add_argument("--resume", action="store_true", help="keep --output's rows of the same settings")
    parser.add_argument("--output", type=Path, help="JSON file (default: benchmarks/results/vs_trl_task[_smoke].json)")
    parser.add_argument("--smoke", action="store_true", help="tiny test model, 64-token runs, 4 items x 2")
    args = parser.parse_args(argv)
    name = "vs_trl_task_smoke.json" if args.smoke else "vs_trl_task.json"
    args.output = args.output or Path(__file__).parent / "results" / name
    if args.smoke:
        args.tokens, args.eval_items, args.samples_per_item = 64, 4, 2
    return args


SHARED_SETTINGS = ("model", "task", "tokens", "lr", "eval_items", "samples_per_item", "seed", "smoke", "device")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    settings, rows = resumed(args, SHARED_SETTINGS)
    done = {(row["variant"], row["lr"], row["seed"]) for row in rows}
    with tempfile.TemporaryDirectory(prefix="vs_trl_task-") as folder:
        work = Path(folder)
        model_path = base_model_path(args, work)
        evaluator = make_evaluator(model_path, args)
        before = evaluator(load_model(model_path, device=args.device)[0])
        s = before.summary()
        print(f"before: accuracy {s['accuracy']:.3f}, greedy {s['greedy_accuracy']:.3f} ({s['items']} items)")
        for run in [Run(v, args.lr, seed) for seed in args.seeds for v in ("ours", "trl")]:
            if run.key in done:
                continue
            torch.manual_seed(run.seed)
            model, seconds, tokens = (train_trl if run.variant == "trl" else train_ours)(model_path, run, args, work)
            rows.append(result_row(run, seconds, tokens, before, evaluator(model)))
            r = rows[-1]
            print(
                f"{run.variant} seed {run.seed}: {r['train_seconds']:.0f} s, {r['train_tokens']} tokens, accuracy "
                f"{r['accuracy_before']:.3f} -> {r['accuracy_after']:.3f} ({r['reward_gain']:+.3f} ± "
                f"{r['reward_gain_se']:.3f}), greedy {r['greedy_gain']:+.3f}, KL {r['kl']:.2f}",
                flush=True,
            )
            del model
            gc.collect()
            model_name = "tiny test model" if args.smoke else args.model or DEFAULT_MODEL
            summary = summarize(rows, ["greedy_gain"])
            result = {"model": model_name, "settings": settings, "rows": rows, "summary": summary}
            atomic_write_json(args.output, result)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
