"""Our main job against TRL's ``GRPOTrainer``: the same model, reward, prompts, completion length and token budget.

For every learning rate of each framework, and every training seed, it trains a fresh copy of the starting model until
it has generated ``--tokens`` completion tokens (the run stops at the end of the rollout that passes the budget), then
evaluates the trained model with one shared evaluator: ``agents.evaluation.evaluate`` on the held-out
``movie_reviews:eval`` prompts, ``--samples-per-prompt`` completions of each, one fixed evaluation seed, KL to a frozen
copy of the starting model. The untrained model is evaluated once with the same seed, so every trained model's reward
gain is paired with it completion by completion (the SE of a run is over those completions); the summary gives the
mean ± SE over training seeds of each point (runs differ by their seed, so this is the SE that compares points).

Two ablations of our GRPO find what makes TRL's points differ (``--ablations NAME@LR ...``):
``k3`` puts TRL's sampled-token k3 estimate in the loss instead of the exact per-state KL (``kl_estimator="k3"``), and
``fixed-beta`` keeps the KL coefficient at its start (``kl_target=None``) as TRL's ``beta`` is, instead of raising it
while the KL passes the main job's target (at 1e-4 by default: at 5e-5 the KL stays under the 5.5-nat target, the
coefficient never leaves its floor and the ablation is the main job itself, as seed 0 showed). Everything else of the
main job is kept in both (``k3`` keeps the score
term, ``kl_score_term``, which charges the exact KL still to come: it changes the per-state term only).

Columns: training seconds (wall clock of the training loop, model loading and evaluations excluded: throughput stays
measured), completion tokens generated during training and their rate, paired reward gain ± standard error, KL to the
starting model ± SE (nats per completion, summed exact per-token KL) and distinct-2 (distinct word bigrams).

What is held equal: the starting model (one folder, loaded fresh for every run), the VADER sentiment reward of the
completion (``make_reward("sentiment")``), the ``movie_reviews`` training prompts as plain text (no chat template;
both tokenize the raw prompt with the tokenizer's own special tokens), 20 new tokens with stop on EOS, plain sampling at
temperature 1, the algorithm (GRPO: groups of completions of one prompt, rewards centred in their group and divided
by its std only when the main job's ``scale_rewards`` is on (TRL's ``scale_rewards``), clipped ratio, KL in the loss),
its shape taken from the main job's `GRPOConfig` (16 completions per rollout in groups of 4, minibatches of 8, one
epoch, clip 0.2), AdamW at a constant learning rate, gradient-norm clip 1.0, full fine-tuning of float32 weights with
bfloat16 autocast forwards when the main job's ``bf16_autocast`` is on (TRL's ``bf16``), the starting KL coefficient
of the main job, and the completion-token budget. What differs: ours adds the exact per-token KL (with its gradient)
to the loss, charges the KL still to come through the advantages (``kl_score_term``) and raises its coefficient above
its floor while the KL passes the main job's target; TRL uses a fixed ``--beta`` times its k3 estimate and its default
``dapo`` loss aggregation; and ours generates through the env's KV-cached loop, TRL with ``model.generate``. The main
job's own before/after evaluation is cut to two prompts, as its exported model goes through the shared evaluator like
TRL's.

Tokens: ours is the main job's ``timesteps`` (one per generated token, EOS included); for TRL the reward function
sums ``len(completion_ids)`` over the completions it scores (TRL cuts each completion after its first EOS and keeps
the EOS), which counts completion tokens only, unlike TRL's ``num_tokens`` log that adds the prompt tokens.

Install and run (the default: 3 seeds x (2 x 3 learning rates + 2 ablations) = 24 runs of 9,600 tokens plus 25
evaluations of 320 completions: about two hours on a 2-core CPU)::

    pip install -e ".[benchmark]"
    python benchmarks/vs_trl.py                               # SmolLM2-135M-Instruct
    python benchmarks/vs_trl.py --seeds 0 --ablations         # one seed, no ablations
    python benchmarks/vs_trl.py --ablations k3@1e-4          # another ablation point
    python benchmarks/vs_trl.py --resume                      # keep the rows already in --output, run the rest
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
import json
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


ABLATIONS = {"k3": {"kl_estimator": "k3"}, "fixed-beta": {"kl_target": None}}
"""Our GRPO's ablations: agent options over the main job's."""


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run: a framework (``ours``, ``trl``) or our ablation (``ours-k3``, ``ours-fixed-beta``)."""

    variant: str
    lr: float
    seed: int

    @property
    def key(self) -> tuple[str, float, int]:
        return (self.variant, self.lr, self.seed)


def result_row(
    run: Run, seconds: float, tokens: int, before: EvalResult, after: EvalResult, budget: int
) -> dict[str, Any]:
    gain = paired_gain(before, after)
    return {
        "framework": "trl" if run.variant == "trl" else "ours",
        "variant": run.variant,
        "lr": run.lr,
        "seed": run.seed,
        "token_budget": budget,
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


def train_ours(model_path: str, run: Run, args: argparse.Namespace, work: Path) -> tuple[PreTrainedModel, float, int]:
    """Run the main job (its settings; the learning rate, the seed and an ablation's options changed) for
    ``args.tokens``; returns the exported model, the training-loop seconds and the generated tokens."""
    output = work / f"{run.variant}-{run.lr:g}-{run.seed}"
    ablation = ABLATIONS[run.variant.removeprefix("ours-")] if run.variant != "ours" else {}
    # its own before/after evaluation runs on two prompts only: the shared evaluator redoes it on the exported model
    two_prompts = work / "two_eval_prompts.txt"
    two_prompts.write_text("\n".join(p.text for p in make_prompt_source(args.eval_prompts).prompts[:2]) + "\n")
    options: dict[str, Any] = {
        "model": model_path,
        "reward": REWARD,
        "prompts": args.prompts,
        "eval_prompts": str(two_prompts),
        "steps": args.tokens,
        "seed": run.seed,
        "output": str(output),
        "num_envs": _MAIN_JOB_SLOTS,
        "max_new_tokens": MAX_NEW_TOKENS,
        "eval_every": 0,
        "checkpoint_every": 10**9,  # only the one at the end, after the timed loop
        "tensorboard": False,
        "agent_options": {**MAIN_JOB_OPTIONS, "learning_rate": run.lr, **ablation},
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
class CountingTokens:
    """Wraps a TRL reward function, counting the completion tokens it is shown (``len(completion_ids)``)."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self.__name__ = getattr(function, "__name__", "reward")  # TRL names its reward metrics after the function
        self.tokens = 0

    def __call__(self, prompts: Sequence, completions: Sequence, completion_ids: Sequence, **columns: Any) -> list:
        self.tokens += sum(len(ids) for ids in completion_ids)
        return self.function(prompts=prompts, completions=completions, completion_ids=completion_ids, **columns)


def sentiment_reward(name: str) -> Any:
    """TRL reward function: the env's reward of each completion (plain-text prompts)."""
    reward = make_reward(name)

    def score(prompts: Sequence[str], completions: Sequence[str], **_: Any) -> list:
        scores = reward.components(list(prompts), list(completions), [True] * len(completions), None)
        return np.sum(list(scores.values()), axis=0).astype(float).tolist()

    score.__name__ = name
    return score


class TokenBudget(TrainerCallback):
    """Stops a transformers Trainer at the end of the rollout (``steps_per_generation`` x ``num_iterations``
    optimizer steps) in which `reward` has counted `tokens` completion tokens; times the training loop."""

    def __init__(self, reward: CountingTokens, tokens: int, steps_per_generation: int) -> None:
        self.reward, self.tokens, self.steps_per_generation = reward, tokens, steps_per_generation
        self.started = 0.0
        self.elapsed = 0.0

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs) -> None:
        self.elapsed = time.perf_counter() - self.started
        if self.reward.tokens >= self.tokens and state.global_step % (self.steps_per_generation * EPOCHS) == 0:
            control.should_training_stop = True


def trl_config(lr: float, seed: int, args: argparse.Namespace, output: Path) -> Any:
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
        max_steps=10**9,  # the TokenBudget callback stops it
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
        seed=seed,
        report_to="none",
        logging_strategy="no",
        save_strategy="no",
        disable_tqdm=True,
    )


def train_trl(model_path: str, run: Run, args: argparse.Namespace, work: Path) -> tuple[PreTrainedModel, float, int]:
    """Train with TRL's GRPOTrainer for ``args.tokens``; returns the model, training-loop seconds, generated tokens."""
    try:
        from datasets import Dataset
        from trl import GRPOTrainer
    except ImportError as error:
        raise SystemExit(f'This benchmark needs TRL: pip install -e ".[benchmark]" ({error})') from error
    model, tokenizer = load_model(model_path)  # TRL loads its reference model from the same folder
    dataset = Dataset.from_dict({"prompt": [p.text for p in make_prompt_source(args.prompts).prompts]})
    reward = CountingTokens(sentiment_reward(REWARD))
    budget = TokenBudget(reward, args.tokens, COMPLETIONS_PER_ROLLOUT // MINIBATCH)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=trl_config(run.lr, run.seed, args, work / f"trl-{run.lr:g}-{run.seed}"),
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
    header = f"{'variant':<16}{'lr':>8}{'seed':>5}{'train s':>9}{'tokens':>8}{'tok/s':>7}"
    header += f"{'reward gain':>17}{'KL (nats)':>14}"
    print(f"\n{header}  distinct-2")
    for r in rows:
        gain = f"{r['reward_gain']:+.3f} ± {r['reward_gain_se']:.3f}"
        kl = f"{r['kl']:.2f} ± {r['kl_se']:.2f}"
        print(
            f"{r['variant']:<16}{r['lr']:>8.2g}{r['seed']:>5}{r['train_seconds']:>9.1f}{r['train_tokens']:>8d}"
            f"{r['train_tokens_per_second']:>7.1f}{gain:>17}{kl:>14}  {r['distinct2_after']:.3f}"
        )
    print(f"\n{'variant':<16}{'lr':>8}{'seeds':>6}{'reward gain (SE over seeds)':>30}{'KL (SE over seeds)':>22}")
    for point in summarize(rows):
        print(
            f"{point['variant']:<16}{point['lr']:>8.2g}{point['seeds']:>6}"
            f"{point['reward_gain']:>+23.3f} ± {point['reward_gain_se']:.3f}{point['kl']:>15.2f} ± {point['kl_se']:.2f}"
        )


def summarize(rows: list[dict], extra: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Mean and SE over training seeds (sample std / sqrt(n); nan for one seed) of each (variant, lr) point: reward
    gain, KL, distinct-2, tokens and their rate, and the `extra` keys of the rows."""
    points: dict[tuple[str, float], list[dict]] = {}
    for row in rows:
        points.setdefault((row["variant"], row["lr"]), []).append(row)
    summary = []
    for (variant, lr), runs in points.items():
        point: dict[str, Any] = {"variant": variant, "lr": lr, "seeds": len(runs)}
        for key in ("reward_gain", "kl", "distinct2_after", "train_tokens", "train_tokens_per_second", *extra):
            values = np.array([run[key] for run in runs], dtype=float)
            point[key] = float(values.mean())
            point[f"{key}_se"] = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")
        summary.append(point)
    return summary


def planned_runs(args: argparse.Namespace) -> list[Run]:
    """Seed by seed (so a cut-short benchmark has whole seeds): ours, TRL, then the ablations."""
    runs = []
    for seed in args.seeds:
        runs += [Run("ours", lr, seed) for lr in args.lrs_ours] + [Run("trl", lr, seed) for lr in args.lrs_trl]
        runs += [Run(f"ours-{name}", lr, seed) for name, lr in args.ablations]
    return runs


def ablation(text: str) -> tuple[str, float]:
    """An ``--ablations`` entry: ``NAME@LR`` (an ablation of `ABLATIONS` at a learning rate)."""
    name, _, lr = text.partition("@")
    if name not in ABLATIONS or not lr:
        raise argparse.ArgumentTypeError(f"Expected NAME@LR with NAME in {sorted(ABLATIONS)}, got {text!r}")
    try:
        return name, float(lr)
    except ValueError:
        raise argparse.ArgumentTypeError(f"Expected a learning rate after '@', got {text!r}") from None


def base_model_path(args: argparse.Namespace, work: Path) -> str:
    """The folder both frameworks load the starting model from (the tiny test model is saved into `work`)."""
    if not args.smoke:
        return args.model or str(default_model_path())
    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    model.save_pretrained(work / "tiny")
    tokenizer.save_pretrained(work / "tiny")
    return str(work / "tiny")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder or cached hub name (default: the embedded SmolLM2-135M)")
    parser.add_argument("--tokens", type=int, default=9_600, help="completion tokens each run trains on")
    parser.add_argument("--lrs-ours", type=float, nargs="+", default=[3e-5, 5e-5, 1e-4])
    parser.add_argument("--lrs-trl", type=float, nargs="+", default=[3e-5, 5e-5, 1e-4])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument(
        "--ablations",
        nargs="*",
        type=ablation,
        default=[("k3", 5e-5), ("fixed-beta", 1e-4)],
        help="our GRPO's ablations, NAME@LR (default: k3@5e-05 fixed-beta@0.0001; none: no ablations)",
    )
    parser.add_argument(
        "--beta", type=float, default=_OURS.kl_coef, help="TRL's KL coefficient (default: the one ours starts at)"
    )
    parser.add_argument("--prompts", default="movie_reviews", help="training prompts")
    parser.add_argument("--eval-prompts", default="movie_reviews:eval")
    parser.add_argument("--samples-per-prompt", type=int, default=8, help="eval completions per held-out prompt")
    parser.add_argument("--seed", type=int, default=0, help="the evaluation's seed (one for every model)")
    parser.add_argument("--resume", action="store_true", help="keep --output's rows of the same settings, run the rest")
    parser.add_argument("--device", default="cpu", help="TRL and evaluation device (the main job always uses CPU)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--output", type=Path, help="JSON file (default: benchmarks/results/vs_trl[_smoke].json)")
    parser.add_argument("--smoke", action="store_true", help="tiny test model, 64-token runs, 8 eval prompts x 2")
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = Path(__file__).parent / "results" / ("vs_trl_smoke.json" if args.smoke else "vs_trl.json")
    if args.smoke:
        args.tokens = 64
        args.eval_prompts = [p.text for p in make_prompt_source(args.eval_prompts).prompts[:8]]
        args.samples_per_prompt = 2
    return args


SHARED_SETTINGS = (
    "model",
    "tokens",
    "beta",
    "prompts",
    "eval_prompts",
    "samples_per_prompt",
    "seed",
    "smoke",
    "device",
    "threads",
)
"""The settings every row of one output file must share (``--resume`` keeps rows only when they match)."""


def resumed(args: argparse.Namespace, shared: Sequence[str]) -> tuple[dict[str, Any], list[dict]]:
    """The run's settings (JSON-ready) and, with ``--resume``, the rows already in ``--output`` (which must share
    the `shared` settings; else SystemExit)."""
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    if not (args.resume and args.output.exists()):
        return settings, []
    previous = json.loads(args.output.read_text(encoding="utf-8"))
    changed = [k for k in shared if previous["settings"].get(k) != settings[k]]
    if changed:
        raise SystemExit(f"Expected {args.output} to hold runs of the same {', '.join(changed)}; start afresh")
    return settings, list(previous["rows"])


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    settings, rows = resumed(args, SHARED_SETTINGS)
    done = {(row["variant"], row["lr"], row["seed"]) for row in rows}
    with tempfile.TemporaryDirectory(prefix="vs_trl-") as folder:
        work = Path(folder)
        model_path = base_model_path(args, work)
        evaluator = make_evaluator(model_path, args)
        before = evaluator(load_model(model_path, device=args.device)[0])
        print(f"before: reward {before.reward_mean:.3f}, distinct-2 {before.distinct2:.3f}", flush=True)
        model_name = "tiny test model" if args.smoke else args.model or DEFAULT_MODEL
        for run in planned_runs(args):
            if run.key in done:
                continue
            torch.manual_seed(run.seed)
            train = train_trl if run.variant == "trl" else train_ours
            model, seconds, tokens = train(model_path, run, args, work)
            rows.append(result_row(run, seconds, tokens, before, evaluator(model), args.tokens))
            row = rows[-1]
            print(
                f"{run.variant} lr {run.lr:g} seed {run.seed}: {row['train_seconds']:.0f} s, {row['train_tokens']} "
                f"tokens, gain {row['reward_gain']:+.3f} ± {row['reward_gain_se']:.3f}, KL {row['kl']:.2f}",
                flush=True,
            )
            del model
            gc.collect()
            result = {"model": model_name, "settings": settings, "rows": rows, "summary": summarize(rows)}
            atomic_write_json(args.output, result)
    print_table(rows)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
