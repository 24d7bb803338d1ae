"""The output folder of a training run: its lock, the checks made before training starts, and what ``--resume``
starts from after a kill at any moment.

What survives a crash (SIGKILL included): every file is replaced atomically (`textgen_env.storage`), so each is the
old version or the new one; ``checkpoint/`` is the last complete checkpoint (recovered if the kill fell between the
two renames of a swap); ``progress.csv`` is cut back to the checkpoint's iteration on resume, so every iteration
appears once; a run killed before its first checkpoint resumes from the start. The lock is an ``flock`` that the
kernel drops with the process, so a killed run never blocks the next one.

What a run may replace: ``checkpoint/`` and ``model/`` only when they are missing, empty or folders of their kind
that the package wrote (`textgen_env.storage.check_replaceable`); anything else is refused before any work starts
unless ``overwrite`` is given. An output of ``/``, the home folder, the current folder or a folder above it is
refused at argument time (`check_output_location`), and so is a run that would replace the model it reads.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import shutil
import warnings
from pathlib import Path

from agents.base import Agent
from agents.checkpoint import checkpoint_exists
from textgen_env.storage import RunLock, atomic_folder, atomic_write, check_replaceable

__all__ = [
    "RUN_FOLDERS",
    "RunLock",
    "check_free_space",
    "check_model_not_replaced",
    "check_output_location",
    "check_run_folders",
    "check_writable",
    "clear_run_folders",
    "export_model",
    "needed_bytes",
    "resume_point",
    "trim_progress",
]

RUN_FOLDERS = {"checkpoint": "checkpoint", "model": "export"}
"""The folders a run replaces as a whole inside its output -> the kind their ``.complete`` marker names."""


def check_output_location(output: str | os.PathLike[str], flag: str = "--output") -> None:
    """Raise ValueError when `output` names a folder no run should write into or replace: ``/``, the home folder,
    the current folder or one above it (``.``, ``..``). Pure path arithmetic, for argument-time checks."""
    text = os.fspath(output)
    if not text.strip():
        raise ValueError(f"Expected {flag} to name a folder, got {text!r}")
    resolved = Path(text).expanduser().resolve()
    forbidden = {Path("/").resolve(): "the file-system root", Path.home().resolve(): "the home folder"}
    what = forbidden.get(resolved)
    if what is None and Path.cwd().resolve().is_relative_to(resolved):
        what = "the current folder" if resolved == Path.cwd().resolve() else "a folder above the current one"
    if what is not None:
        raise ValueError(
            f"Expected {flag} to name a folder of its own (e.g. runs/my-run), got {text!r}, which is {what}"
        )


def check_model_not_replaced(model: str | os.PathLike[str] | None, output: str | os.PathLike[str]) -> None:
    """Raise ValueError when the model a run reads lies inside a folder the run replaces (``OUTPUT/model``,
    ``OUTPUT/checkpoint``): ``--overwrite`` does not allow this either, the starting model would be lost."""
    if model is None or not isinstance(model, (str, os.PathLike)):
        return
    path = Path(model).expanduser()
    if not path.exists():
        return  # a hub name
    resolved = path.resolve()
    for name in RUN_FOLDERS:
        replaced = (Path(output).expanduser() / name).resolve()
        if resolved.is_relative_to(replaced):
            raise ValueError(
                f"Expected --model outside the folder this run replaces ({str(replaced)!r}), got {os.fspath(model)!r}; "
                "choose another --output (e.g. a new folder) to train from this model"
            )


def check_run_folders(output: Path, *, overwrite: bool = False) -> None:
    """Raise FileExistsError (naming the folder and ``--overwrite``) when a folder the run replaces holds something
    the package did not write; called before any work starts."""
    for name, kind in RUN_FOLDERS.items():
        check_replaceable(output / name, kind, overwrite=overwrite)


def clear_run_folders(output: Path) -> None:
    """With ``--overwrite``: delete what sits where the run's folders go and is not one of them (done deliberately,
    once the run holds its folder's lock), so the run's own saves never meet it."""
    for name, kind in RUN_FOLDERS.items():
        target = output / name
        try:
            check_replaceable(target, kind)
        except FileExistsError:
            if target.is_symlink() or not target.is_dir():
                target.unlink()
            else:
                shutil.rmtree(target)


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


def export_model(agent: Agent, folder: Path) -> None:
    """Save the trained LM (LoRA merged into a copy) with its tokenizer in Hugging Face format, atomically."""
    import copy

    model = agent.policy.model
    if agent.config.lora_rank > 0:
        model = copy.deepcopy(model).merge_and_unload()  # type: ignore[operator]  # a PeftModel when lora_rank > 0
    with atomic_folder(folder, name="export") as staging:
        model.save_pretrained(staging)
        agent.policy.tokenizer.save_pretrained(staging)


def needed_bytes(agent: Agent) -> int:
    """Disk a run needs: two checkpoints at once (weights, AdamW's two moments per trained weight) and the export."""
    model = agent.policy.model
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    trained = sum(p.numel() * p.element_size() for p in agent.policy.trainable_parameters())
    return 2 * (weights + 2 * trained) + weights
