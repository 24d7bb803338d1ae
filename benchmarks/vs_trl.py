"""Our main job against TRL's ``GRPOTrainer``: the same model, reward, prompts, completion length and wall-clock budget.

For every learning rate of each framework it trains a fresh copy of the starting model for ``--minutes`` of training
loop (model loading and evaluations excluded), then evaluates the trained model with one shared evaluator:
``agents.evaluation.evaluate`` on the held-out ``movie_reviews:eval`` prompts, ``--samples-per-prompt`` completions of
each, fixed seed, KL to a frozen copy of the starting model. The untrained model is evaluated once with the same
seed, so every trained model's reward gain is paired with it completion by completion.

Columns: training seconds, completion tokens generated during training and their rate (what each framework gets
through in the same budget), paired reward gain ± standard error, KL to the starting model ± SE (nats per
completion, summed exact per-token KL) and distinct-2 (distinct word bigrams, before / after).

What is held equal: the starting model (one folder, loaded fresh for every run), the VADER sentiment reward of the
completion (``make_reward("sentiment")``), the ``movie_reviews`` training prompts as plain text (no chat template;
both tokenize the raw prompt with the tokenizer's own special tokens), 20 new tokens with stop on EOS, plain sampling at
temperature 1, the algorithm (GRPO: groups of completions of one prompt, rewards centred in their group and divided
by its std only when the main job's ``scale_rewards`` is on (TRL's ``scale_rewards``), clipped ratio, KL in the loss),
its shape taken from the main job's `GRPOConfig` (16 completions per rollout in groups of 4, minibatches of 8, one
epoch, clip 0.2), AdamW at a constant learning rate, gradient-norm clip 1.0, full fine-tuning of float32 weights with
bfloat16 autocast forwards when the main job's ``bf16_autocast`` is on (TRL's ``bf16``), and the starting KL
coefficient of the main job. What differs: ours adds the exact per-token KL (with its gradient) to the loss and
raises its coefficient above its floor while the KL passes the main job's target; TRL uses a fixed ``--beta`` times
its k3 estimate and its default ``dapo`` loss aggregation; and ours generates through the env's KV-cached loop, TRL with
``model.generate``. The main job's own before/after evaluation is cut to two prompts, as its exported model goes
through the shared evaluator like TRL's.

Tokens: ours is the main job's ``timesteps`` (one per generated token, EOS included); for TRL the reward function
sums ``len(completion_ids)`` over the completions it scores (TRL cuts each completion after its first EOS and keeps
the EOS), which counts completion tokens only, unlike TRL's ``num_tokens`` log that adds the prompt tokens.

Install and run (the default, 2 x 3 learning rates x 3 minutes of training plus 7 evaluations of 160 completions,
takes about half an hour on a 2-core CPU)::

    pip install -e ".[benchmark]"
    python benchmarks/vs_trl.py                               # SmolLM2-135M-Instruct, 3 minutes per run
    python benchmarks/vs_trl.py --minutes 10 --lrs-ours 1.3e-5 --lrs-trl 1e-5 2e-5
    python benchmarks/vs_trl.py --smoke                       # the tiny test model, seconds per run (< 2 min)

Rows go to ``--output`` (JSON, rewritten atomically after every run). Both frameworks run with torch's default
number of threads (``--threads`` sets another). The main job has
no device setting and always trains on the CPU; ``--device`` moves TRL's training and the evaluations.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the models are local; never wait on the network

import argparse
import csv
import dataclasses
import gc
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback

from agents.app.training import MAIN_JOB_OPTIONS, TrainSettings, run_training
from agents.config import GRPOConfig as OurGRPOConfig
from agents.evaluation import EvalResult, evaluate, paired_gain
from agents.policy import LMPolicy
from textgen_env import TextGenVectorEnv, load_model, make_prompt_source
from textgen_env.models import DEFAULT_MODEL, default_model_path
from textgen_env.rewards import make_reward
from textgen_env.storage import atomic_write_json
from textgen_env.testing import tiny_model_and_tokenizer

REWARD = "sentiment"
MAX_NEW_TOKENS = 20
_OURS = OurGRPOConfig(**MAIN_JOB_OPTIONS)  # the main job's agent settings, which TRL's are matched to
_MAIN_JOB_SLOTS = TrainSettings.__dataclass_fields__["num_envs"].default  # its env slots (one rollout round)
NUM_GENERATIONS = _OURS.group_size  # completions per prompt
COMPLETIONS_PER_ROLLOUT = _OURS.episodes_per_iteration  # 16 completions per iteration
MINIBATCH = _OURS.minibatch_size
EPOCHS = _OURS.epochs
CLIP = _OURS.clip_range


# ------------------------------------------------------------------------------------------------- evaluation
@dataclasses.dataclass
class Evaluator:
    """One evaluation for every model: same prompts, samples, seed, env and frozen reference."""

    reference: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    env: TextGenVectorEnv
    prompts: str | list[str]
    samples_per_prompt: int
    seed: int

    def __call__(self, model: PreTrainedModel) -> EvalResult:
        policy = LMPolicy(model, self.tokenizer, value_head=False, reference=self.reference)
        return evaluate(policy, self.env, self.prompts, samples_per_prompt=self.samples_per_prompt, seed=self.seed)


def make_evaluator(model_path: str, args: argparse.Namespace) -> Evaluator:
    reference, tokenizer = load_model(model_path, device=args.device)
    reference.requires_grad_(False)
    env = TextGenVectorEnv(
        num_envs=1,
        model=reference,
        tokenizer=tokenizer,
        reward=REWARD,
        max_new_tokens=MAX_NEW_TOKENS,
        prompts=args.prompts,
        device=args.device,
    )
    return Evaluator(reference, tokenizer, env, args.eval_prompts, args.samples_per_prompt, args.seed)


def result_row(framework: str, lr: float, seconds: float, tokens: int, before: EvalResult, after: EvalResult) -> dict:
    gain = paired_gain(before, after)
    return {
        "framework": framework,
        "lr": lr,
        "train_seconds": seconds,
        "train_tokens": int(tokens),
        "train_tokens_per_second": tokens / seconds if seconds > 0 else float("nan"),
        "reward_before": before.reward_mean,
        "reward_after": after.reward_mean,
        "reward_gain": gain.mean,
        "reward_gain_se": gain.se,
        "kl": after.kl_mean,
        "kl_se": after.kl.se,
        "distinct2_before": before.distinct2,
        "distinct2_after": after.distinct2,
    }


# ------------------------------------------------------------------------------------------------- our main job
def _loop_seconds(output: Path, called_at: float) -> float:
    """Seconds of the main job's training loop: from the end of its before-evaluation (``eval_before.json`` written)
    to its last iteration's row in ``progress.csv``, whose ``wall_seconds`` count from the run_training call; the
    checkpoint and export after the loop are left out, as TRL saves nothing."""
    with (output / "progress.csv").open(encoding="utf-8") as stream:
        last = list(csv.DictReader(stream))[-1]
    loop_started = (output / "eval_before.json").stat().st_mtime - called_at
    return float(last["wall_seconds"]) - loop_started


def train_ours(model_path: str, lr: float, args: argparse.Namespace, work: Path) -> tuple[PreTrainedModel, float, int]:
    """Run the main job (its settings, only the learning rate changed) for ``args.minutes``; returns the exported
    model, the training-loop seconds and the generated tokens."""
    output = work / f"ours-{lr:g}"
    # its own before/after evaluation runs on two prompts only: the shared evaluator redoes it on the exported model
    two_prompts = work / "two_eval_prompts.txt"
    two_prompts.write_text("\n".join(p.text for p in make_prompt_source(args.eval_prompts).prompts[:2]) + "\n")
    options: dict[str, Any] = {
        "model": model_path,
        "reward": REWARD,
        "prompts": args.prompts,
        "eval_prompts": str(two_prompts),
        "steps": 10**12,  # the wall-clock budget stops it
        "max_minutes": args.minutes,
        "seed": args.seed,
        "output": str(output),
        "num_envs": _MAIN_JOB_SLOTS,
        "max_new_tokens": MAX_NEW_TOKENS,
        "eval_every": 0,
        "checkpoint_every": 10**9,  # only the one at the end, after the timed loop
        "tensorboard": False,
        "agent_options": {**MAIN_JOB_OPTIONS, "learning_rate": lr},
        "eval_samples_per_prompt": 1,
    }
    known = {f.name for f in dataclasses.fields(TrainSettings)}
    called_at = time.time()
    report = run_training(TrainSettings(**{k: v for k, v in options.items() if k in known}))
    seconds = _loop_seconds(output, called_at)
    model, _ = load_model(output / "model", device=args.device)
    shutil.rmtree(output, ignore_errors=True)  # the checkpoint is three model sizes
    return model, seconds, int(report["timesteps"])


# ------------------------------------------------------------------------------------------------------- TRL
class TimeBudget(TrainerCallback):
    """Stops a transformers Trainer after the optimizer step that passes `seconds` of training loop."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = 0.0
        self.elapsed = 0.0

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs) -> None:
        self.elapsed = time.perf_counter() - self.started
        if self.elapsed > self.seconds:
            control.should_training_stop = True


class CountingReward:
    """TRL reward function: the env's reward of each completion, counting the completion tokens it is shown."""

    def __init__(self, name: str) -> None:
        self.reward = make_reward(name)
        self.__name__ = name  # TRL names its reward metrics after the function
        self.tokens = 0

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], completion_ids: Sequence, **_) -> list:
        self.tokens += sum(len(ids) for ids in completion_ids)
        scores = self.reward.components(list(prompts), list(completions), [True] * len(completions), None)
        return np.sum(list(scores.values()), axis=0).astype(float).tolist()


def trl_config(lr: float, args: argparse.Namespace, output: Path) -> Any:
    """GRPOConfig matched to the main job (see the module docstring); TRL's own defaults for the GRPO-specific rest."""
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=str(output),
        learning_rate=lr,
        lr_scheduler_type="constant",  # ours: no schedule (the Trainer default decays linearly to 0 over max_steps)
        warmup_steps=0,
        optim="adamw_torch",  # torch.optim.AdamW with its default betas and eps, as ours
        weight_decay=0.0,
        max_grad_norm=1.0,
        max_steps=10**9,  # the TimeBudget callback stops it
        per_device_train_batch_size=MINIBATCH,
        gradient_accumulation_steps=1,
        steps_per_generation=COMPLETIONS_PER_ROLLOUT // MINIBATCH,  # 16 completions (4 prompts x 4) per rollout
        num_iterations=EPOCHS,
        num_generations=NUM_GENERATIONS,
        epsilon=CLIP,
        beta=args.beta,
        max_completion_length=MAX_NEW_TOKENS,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        disable_dropout=True,  # ours runs the model in eval mode
        activation_checkpointing=False,  # GRPOConfig turns it on by default (as gradient_checkpointing)
        bf16=_OURS.bf16_autocast,  # bfloat16 autocast forwards over float32 weights, as ours
        scale_rewards=_OURS.scale_rewards,  # ours: rewards centred in their group, scaled by its std only if set
        fp16=False,
        use_cpu=args.device == "cpu",
        seed=args.seed,
        report_to="none",
        logging_strategy="no",
        save_strategy="no",
        disable_tqdm=True,
    )


def train_trl(model_path: str, lr: float, args: argparse.Namespace, work: Path) -> tuple[PreTrainedModel, float, int]:
    """Train with TRL's GRPOTrainer for ``args.minutes``; returns the model, training-loop seconds, generated tokens."""
    try:
        from datasets import Dataset
        from trl import GRPOTrainer
    except ImportError as error:
        raise SystemExit(f'This benchmark needs TRL: pip install -e ".[benchmark]" ({error})') from error
    model, tokenizer = load_model(model_path)  # TRL loads its reference model from the same folder
    dataset = Dataset.from_dict({"prompt": [p.text for p in make_prompt_source(args.prompts).prompts]})
    reward, budget = CountingReward(REWARD), TimeBudget(args.minutes * 60)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=trl_config(lr, args, work / f"trl-{lr:g}"),
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[budget],
    )
    trainer.train()
    trained = trainer.accelerator.unwrap_model(trainer.model).to(args.device).eval()
    del trainer
    return trained, budget.elapsed, reward.tokens


# ------------------------------------------------------------------------------------------------------ driver
def print_table(rows: list[dict]) -> None:
    header = f"{'framework':<10}{'lr':>8}{'train s':>9}{'tokens':>9}{'tok/s':>8}{'reward gain':>17}{'KL (nats)':>14}"
    print(f"\n{header}  distinct-2 before / after")
    for r in rows:
        gain = f"{r['reward_gain']:+.3f} ± {r['reward_gain_se']:.3f}"
        kl = f"{r['kl']:.2f} ± {r['kl_se']:.2f}"
        print(
            f"{r['framework']:<10}{r['lr']:>8.2g}{r['train_seconds']:>9.1f}{r['train_tokens']:>9d}"
            f"{r['train_tokens_per_second']:>8.1f}{gain:>17}{kl:>14}  {r['distinct2_before']:.3f} / "
            f"{r['distinct2_after']:.3f}"
        )


def base_model_path(args: argparse.Namespace, work: Path) -> str:
    """The folder both frameworks load the starting model from (the tiny test model is saved into `work`)."""
    if not args.smoke:
        return args.model or str(default_model_path())
    model, tokenizer = tiny_model_and_tokenizer(seed=args.seed)
    model.save_pretrained(work / "tiny")
    tokenizer.save_pretrained(work / "tiny")
    return str(work / "tiny")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder or cached hub name (default: the embedded SmolLM2-135M)")
    parser.add_argument("--minutes", type=float, default=3.0, help="training-loop budget per run")
    parser.add_argument("--lrs-ours", type=float, nargs="+", default=[1e-5, 2e-5, 4e-5])
    parser.add_argument("--lrs-trl", type=float, nargs="+", default=[1e-5, 2e-5, 4e-5])
    parser.add_argument(
        "--beta", type=float, default=_OURS.kl_coef, help="TRL's KL coefficient (default: the one ours starts at)"
    )
    parser.add_argument("--prompts", default="movie_reviews", help="training prompts")
    parser.add_argument("--eval-prompts", default="movie_reviews:eval")
    parser.add_argument("--samples-per-prompt", type=int, default=4, help="eval completions per held-out prompt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="TRL and evaluation device (the main job always uses CPU)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--output", type=Path, help="JSON file (default: benchmarks/results/vs_trl[_smoke].json)")
    parser.add_argument("--smoke", action="store_true", help="tiny test model, 3-second runs, 8 eval prompts x 2")
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = Path(__file__).parent / "results" / ("vs_trl_smoke.json" if args.smoke else "vs_trl.json")
    if args.smoke:
        args.minutes = 0.05
        args.eval_prompts = [p.text for p in make_prompt_source(args.eval_prompts).prompts[:8]]
        args.samples_per_prompt = 2
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="vs_trl-") as folder:
        work = Path(folder)
        model_path = base_model_path(args, work)
        evaluator = make_evaluator(model_path, args)
        before = evaluator(load_model(model_path, device=args.device)[0])
        print(f"before: reward {before.reward_mean:.3f}, distinct-2 {before.distinct2:.3f}", flush=True)
        model_name = "tiny test model" if args.smoke else args.model or DEFAULT_MODEL
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        runs = [("ours", lr, train_ours) for lr in args.lrs_ours] + [("trl", lr, train_trl) for lr in args.lrs_trl]
        for framework, lr, train in runs:
            torch.manual_seed(args.seed)
            model, seconds, tokens = train(model_path, lr, args, work)
            rows.append(result_row(framework, lr, seconds, tokens, before, evaluator(model)))
            row = rows[-1]
            print(
                f"{framework} lr {lr:g}: {row['train_seconds']:.0f} s, {row['train_tokens']} tokens, gain "
                f"{row['reward_gain']:+.3f} ± {row['reward_gain_se']:.3f}, KL {row['kl']:.2f}",
                flush=True,
            )
            del model
            gc.collect()
            atomic_write_json(args.output, {"model": model_name, "settings": settings, "rows": rows})
    print_table(rows)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
