"""The output folder of a training run: its lock, the checks made before training starts, and what ``--resume``
starts from after a kill at any moment.

What survives a crash (SIGKILL included): every file is replaced atomically (`textgen_env.storage`), so each is the
old version or the new one; ``checkpoint/`` is the last complete checkpoint (recovered if the kill fell between the
two renames of a swap); ``progress.csv`` is cut back to the checkpoint's iteration on resume, so every iteration
appears once; a run killed before its first checkpoint resumes from the start. The lock is an ``flock`` that the
kernel drops with the process, so a killed run never blocks the next one.
"""

from __future__ import annotations

import csv
import errno
import io
import shutil
import warnings
from pathlib import Path

from agents.checkpoint import checkpoint_exists
from textgen_env.storage import RunLock, atomic_write

__all__ = ["RunLock", "check_free_space", "check_writable", "resume_point", "trim_progress"]


def check_writable(folder: Path) -> None:
    """Raise PermissionError (naming the folder) unless files can be created in `folder` (made if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = atomic_write(folder / ".write-test", b"ok")
        probe.unlink()
    except OSError as error:
        raise PermissionError(
            f"Expected a writable output folder {str(folder)!r}, got {type(error).__name__}: {error.strerror or error}"
        ) from error


def check_free_space(folder: Path, needed_bytes: int) -> None:
    """Raise OSError(ENOSPC) before training when `folder`'s disk has less than `needed_bytes` free."""
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise OSError(
            errno.ENOSPC,
            f"Expected at least {needed_bytes / 1e9:.2f} GB free in {str(folder)!r} for two checkpoints (one being "
            f"replaced) and the exported model, got {free / 1e9:.2f} GB",
        )


def resume_point(output: Path, resume: bool) -> Path | None:
    """The checkpoint to resume from, or None to start from the beginning.

    ``resume`` without a checkpoint (a run killed before its first one, or before it wrote anything) starts from the
    beginning with a warning: the same command then always finishes the run, whatever moment the kill hit.
    """
    if not resume:
        return None
    checkpoint = output / "checkpoint"
    if checkpoint_exists(checkpoint):
        return checkpoint
    warnings.warn(f"No checkpoint in {str(output)!r} yet: resuming from the beginning", stacklevel=2)
    return None


def trim_progress(path: Path, last_iteration: int) -> None:
    """Drop the rows of ``progress.csv`` after `last_iteration` (iterations a resumed run will redo)."""
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    column = header.index("iteration") if "iteration" in header else None
    kept = []
    for row in body:
        if len(row) != len(header) or column is None:
            continue  # a row cut short by a kill
        try:
            if float(row[column]) <= last_iteration:
                kept.append(row)
        except ValueError:
            continue
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *kept])  # csv.DictWriter's own line ends
    if buffer.getvalue() != text:
        atomic_write(path, buffer.getvalue())
