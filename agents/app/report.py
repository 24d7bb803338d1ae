"""The final report of a training run: ``report.json``, sample generations and a PNG of reward and KL curves."""

from __future__ import annotations

import csv
from pathlib import Path

from textgen_env.storage import atomic_write

__all__ = ["plot_curves"]


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
