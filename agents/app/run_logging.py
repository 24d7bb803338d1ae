"""Training-run logs: a CSV file, TensorBoard when available, and a tqdm progress bar with live reward and KL."""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from textgen_env.storage import append_line

__all__ = ["RunLogger"]

CSV_FIELDS = (
    "iteration",
    "timesteps",
    "wall_seconds",
    "rollout/reward_mean",
    "rollout/kl",
    "train/kl_coef",
    "losses/policy",
    "losses/value",
    "losses/entropy",
    "losses/approx_kl",
    "losses/clip_fraction",
    "losses/td",
    "losses/grad_norm",
    "eval/reward_mean",
    "eval/kl",
    "eval/distinct2",
    "task/difficulty",
    "task/success_rate",
    "task/level_changes",
    "rollout/zero_variance_groups",
    "rollout/dropped_groups",
)


def _csv_line(row: dict[str, Any]) -> str:
    """One ``progress.csv`` line of `row` (columns CSV_FIELDS, missing ones empty, others ignored)."""
    buffer = io.StringIO()
    csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore").writerow(row)
    return buffer.getvalue()


class RunLogger:
    """Appends one row per iteration to ``progress.csv`` (resumable) and mirrors it to TensorBoard and a bar.

    Args:
        folder: the run's output folder.
        total_timesteps: the token budget, for the progress bar.
        start_timesteps: tokens already done (when resuming).
        tensorboard: write TensorBoard event files under ``folder/tensorboard`` (needs the tensorboard package).
    """

    def __init__(
        self, folder: str | Path, total_timesteps: int, start_timesteps: int = 0, *, tensorboard: bool = True
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.folder / "progress.csv"
        if not self.csv_path.exists() or self.csv_path.stat().st_size == 0:  # new, or left empty by a kill
            append_line(self.csv_path, _csv_line(dict(zip(CSV_FIELDS, CSV_FIELDS))))
        self._tensorboard = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tensorboard = SummaryWriter(str(self.folder / "tensorboard"))
            except ImportError:
                warnings.warn('TensorBoard logging is off: pip install "textgen-env[train]" to enable it', stacklevel=2)
        self._bar = tqdm(total=total_timesteps, initial=start_timesteps, unit="tok", dynamic_ncols=True)

    def log(self, stats: dict[str, Any]) -> None:
        append_line(self.csv_path, _csv_line(stats))
        step = int(stats.get("timesteps", 0))
        if self._tensorboard is not None:
            for key, value in stats.items():
                if key not in ("iteration", "timesteps"):
                    self._tensorboard.add_scalar(key, value, step)
            self._tensorboard.flush()
        self._bar.update(step - self._bar.n)
        postfix = {"reward": stats.get("rollout/reward_mean"), "kl": stats.get("rollout/kl")}
        if "eval/reward_mean" in stats:
            postfix["eval"] = stats["eval/reward_mean"]
        self._bar.set_postfix({k: f"{v:.3f}" for k, v in postfix.items() if v is not None})

    def write(self, text: str) -> None:
        """Print a line without breaking the progress bar."""
        self._bar.write(text)

    def close(self) -> None:
        self._bar.close()
        if self._tensorboard is not None:
            self._tensorboard.close()
