"""The final report of a training run: ``report.json``'s evaluation fields, its log lines and a PNG of the curves."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from agents.app.task_job import describe_task_eval
from agents.evaluation import EvalResult, paired_gain
from agents.evaluation.tasks import TaskEvalResult
from textgen_env.storage import atomic_write

AnyResult = EvalResult | TaskEvalResult
"""A before/after evaluation: rewards on prompts (TextGen-v0, TextDialogue-v0) or accuracy on task items."""

__all__ = ["AnyResult", "describe_eval", "plot_curves", "reward_report"]


def _read_progress(path: Path) -> list[dict[str, float]]:
    rows = []
    with path.open(encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            rows.append({k: float(v) for k, v in row.items() if v not in ("", None)})
    return rows


def plot_curves(
    progress_csv: str | Path, output_png: str | Path, *, title: str, eval_before: float, eval_after: float
) -> Path:
    """Two panels over iterations: the rollout and eval reward (with before/after lines) and the KL."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _read_progress(Path(progress_csv))
    iterations = [r["iteration"] for r in rows]
    figure, (reward_axis, kl_axis) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    reward_axis.plot(iterations, [r.get("rollout/reward_mean", float("nan")) for r in rows], label="training rollouts")
    evaluated = [r for r in rows if "eval/reward_mean" in r]
    if evaluated:
        reward_axis.plot(
            [r["iteration"] for r in evaluated], [r["eval/reward_mean"] for r in evaluated], "o-", label="held-out eval"
        )
    last = iterations[-1] if iterations else 1
    reward_axis.plot([0, last], [eval_before, eval_after], "s", color="black", label="full eval, before / after")
    reward_axis.axhline(eval_before, color="grey", linestyle="--", label=f"eval before: {eval_before:.3f}")
    reward_axis.axhline(eval_after, color="green", linestyle="--", label=f"eval after: {eval_after:.3f}")
    reward_axis.set_xlabel("iteration")
    reward_axis.set_ylabel("mean episode reward")
    reward_axis.set_title("Reward")
    reward_axis.legend(loc="best", fontsize=8)
    kl_axis.plot(iterations, [r.get("rollout/kl", float("nan")) for r in rows], label="training rollouts")
    if evaluated:
        kl_axis.plot([r["iteration"] for r in evaluated], [r.get("eval/kl") for r in evaluated], "o-", label="eval")
    kl_axis.set_xlabel("iteration")
    kl_axis.set_ylabel("KL(policy || reference), nats per completion")
    kl_axis.set_title("KL to the reference model")
    kl_axis.legend(loc="best", fontsize=8)
    figure.suptitle(title)
    output_png = atomic_write(output_png, lambda path: figure.savefig(path, dpi=120, format="png"))
    plt.close(figure)
    return output_png


def reward_report(before: EvalResult, after: EvalResult) -> dict[str, Any]:
    """The reward evaluation's fields of ``report.json``: before, after and the paired gain, KL, diversity, length."""
    gain = paired_gain(before, after)
    return {
        "eval_reward_before": before.reward.mean,
        "eval_reward_before_se": before.reward.se,
        "eval_reward_after": after.reward.mean,
        "eval_reward_after_se": after.reward.se,
        "eval_gain": gain.mean,
        "eval_gain_se": gain.se,
        "eval_kl_before": before.kl.mean,
        "eval_kl": after.kl.mean,
        "eval_kl_se": after.kl.se,
        "eval_distinct2_before": before.distinct2,
        "eval_distinct2_after": after.distinct2,
        "eval_length_before": before.length.mean,
        "eval_length_after": after.length.mean,
        "eval_prompts": after.num_prompts,
        "eval_samples_per_prompt": after.samples_per_prompt,
        "eval_completions": len(after.rewards),
    }


def describe_eval(label: str, result: AnyResult) -> str:
    if isinstance(result, TaskEvalResult):
        return describe_task_eval(label, result)
    return (
        f"eval {label}: reward {result.reward.mean:.3f} ± {result.reward.se:.3f}, KL {result.kl.mean:.2f} ± "
        f"{result.kl.se:.2f}, distinct-2 {result.distinct2:.3f}, length {result.length.mean:.1f} "
        f"({result.num_prompts} prompts x {result.samples_per_prompt} samples)"
    )
