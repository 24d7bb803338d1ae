"""Reading agent checkpoints safely: tensors and plain data only (never code), validated metadata, recovery from a
kill mid-swap, the retired copy, clear errors for bad files.

``agent.pt`` is read with ``torch.load(weights_only=True)``: tensors, numbers, strings and containers of them, and
nothing that could run code on load (a checkpoint from a shared run folder or a downloaded tarball is data, not a
program). Its metadata (algorithm, counters, history, config values) and ``meta.json`` are then checked for type and
finiteness, so a corrupt or crafted file is refused with the file and the field named.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch

from agents.rollout import Episode
from textgen_env.storage import recover_folder, retired_folder

__all__ = ["CheckpointError", "checkpoint_exists", "read_checkpoint", "validate_checkpoint"]

SAFE_TYPES: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [Episode]
"""Classes a checkpoint may hold besides tensors and plain data: DQN checkpoints written before 0.3 pickled their
replay episodes as `Episode` dataclasses (now they are dicts); an `Episode` is rebuilt from its fields, nothing runs."""


class ConfigClass(Protocol):
    """What checkpoint validation asks of a config class (`agents.config.AgentConfig` and its subclasses)."""

    def from_dict(self, values: Mapping[str, Any], *, strict: bool = True) -> Any: ...


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: missing, truncated, unsafe or with invalid metadata (the message names the
    file, and the field where one is at fault)."""


def checkpoint_exists(path: str | os.PathLike[str]) -> bool:
    """Whether `path` or its retired copy (a kill mid-swap) holds a checkpoint to resume from; changes nothing."""
    return any((folder / "agent.pt").is_file() for folder in (Path(path), retired_folder(path)))


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether `value` is config data: None, bool, int, str, a finite float, or a list/tuple of those."""
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)) and depth < 2:
        return all(_plain(item, depth + 1) for item in value)
    return False


def validate_checkpoint(state: Any, file: str | os.PathLike[str], config_class: ConfigClass | None = None) -> None:
    """Raise `CheckpointError` naming `file` and the field unless `state` has an agent checkpoint's structure and
    its metadata has valid types and finite numbers; with `config_class`, its config must also pass that class's
    own checks (``config_class.from_dict``)."""
    where = repr(os.fspath(file))
    if not isinstance(state, dict):
        raise CheckpointError(f"Expected {where} to hold a dict of agent state, got {type(state).__name__}")
    missing = [key for key in ("config", "policy", "optimizer") if key not in state]
    if missing:
        raise CheckpointError(
            f"Expected agent state in {where}, got a file without {', '.join(missing)} (it is not an agent checkpoint)"
        )

    def fail(field: str, expected: str, value: Any) -> None:
        shown = repr(value) if len(repr(value)) <= 80 else f"{repr(value)[:77]}..."
        raise CheckpointError(f"Expected {field} in {where} to be {expected}, got {shown}")

    if not isinstance(state.get("algorithm"), str):
        fail("algorithm", "an algorithm name", state.get("algorithm"))
    for field in ("iteration", "num_timesteps"):
        if not _is_count(state.get(field)):
            fail(field, "an int >= 0", state.get(field))
    world_size = state.get("world_size", 1)
    if not _is_count(world_size) or world_size < 1:
        fail("world_size", "an int >= 1", world_size)
    config = state["config"]
    if not isinstance(config, Mapping):
        fail("config", "a dict of options", config)
    for key, value in config.items():
        if not isinstance(key, str) or not _plain(value):
            fail(f"config[{key!r}]", "a string, bool, int, finite float or None (or a list of them)", value)
    history = state.get("history", [])
    if not isinstance(history, list):
        fail("history", "a list of per-iteration stats", history)
    for row, stats in enumerate(history):
        if not isinstance(stats, Mapping):
            fail(f"history[{row}]", "a dict of stats", stats)
        for key, value in stats.items():
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not isinstance(key, str) or not number or not math.isfinite(value):
                fail(f"history[{row}][{key!r}]", "a finite number", value)
    if config_class is not None:
        try:
            config_class.from_dict(config, strict=False)
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"Expected a valid config in {where}, got: {error}") from None


def _check_meta(folder: Path, state: dict[str, Any]) -> None:
    """``meta.json`` (written beside ``agent.pt`` for people and tools) must agree with the state when present."""
    path = folder / "meta.json"
    if not path.is_file():
        return
    where = repr(str(path))
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CheckpointError(f"Expected {where} to be a JSON object, got unreadable JSON ({error})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"Expected {where} to be a JSON object, got {type(meta).__name__}")
    checks = {"algorithm": lambda v: isinstance(v, str), "iteration": _is_count, "num_timesteps": _is_count}
    for field, valid in checks.items():
        if field in meta and not (valid(meta[field]) and meta[field] == state[field]):
            raise CheckpointError(
                f"Expected {field} in {where} to equal agent.pt's {state[field]!r}, got {meta[field]!r}"
            )


def _unpickling_problem(error: Exception) -> str:
    """One line for an error of the restricted unpickler: what it refused, or that the file is corrupt."""
    text = str(error)
    marker = "Unsupported global:"
    if marker in text:
        refused = text[text.index(marker) :].split(" was not ")[0]
        return f"holds objects other than tensors and plain data, refused unread ({refused})"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"is corrupt or truncated (UnpicklingError: {lines[-1][:200] if lines else 'unreadable pickle'})"


def _load(file: Path) -> Any:
    with torch.serialization.safe_globals(SAFE_TYPES):
        return torch.load(file, map_location="cpu", weights_only=True)


def read_checkpoint(path: str | os.PathLike[str], config_class: ConfigClass | None = None) -> dict[str, Any]:
    """The state dict of the checkpoint folder `path` (see `Agent.load`), validated (`validate_checkpoint`).

    The folder is read first, then its retired copy (`textgen_env.storage.retired_folder`: what a kill between the
    two renames of a save leaves): the first that loads and holds a valid agent state wins. A good folder is then
    tidied (`recover_folder`); a corrupt, unsafe or invalid one is named in the warning or the error.

    Raises:
        FileNotFoundError: no ``agent.pt`` in the folder or its retired copy.
        CheckpointError: (a ValueError) no copy could be read: truncated, holding objects other than tensors and
            plain data (refused unread: loading it could run code), or with invalid metadata.
    """
    folder, retired = Path(path), retired_folder(path)
    candidates = [f / "agent.pt" for f in (folder, retired) if (f / "agent.pt").is_file()]
    if not candidates:
        raise FileNotFoundError(f"Expected a checkpoint folder containing agent.pt, got {str(path)!r}")
    problems = []
    for file in candidates:
        try:
            state = _load(file)
        except pickle.UnpicklingError as error:  # weights_only refused an object: it is never built, nothing ran
            problems.append(f"{str(file)!r} {_unpickling_problem(error)}")
            continue
        except Exception as error:  # truncated zip, ...: name the file and go on to the retired copy
            problems.append(f"{str(file)!r} is corrupt or truncated ({type(error).__name__}: {error})")
            continue
        try:
            validate_checkpoint(state, file, config_class)
            _check_meta(file.parent, state)
        except CheckpointError as error:
            problems.append(str(error))
            continue
        if problems:
            warnings.warn(f"{problems[0]}; using the intact copy {str(file)!r}", stacklevel=3)
        elif file.parent == folder or not folder.exists():
            recover_folder(folder)  # drop a finished swap's leftover, or put the retired copy back in place
        return state
    raise CheckpointError(
        f"Expected a readable checkpoint in {str(path)!r}, got: {'; '.join(problems)}. Start the run over in a new "
        "--output (or delete this checkpoint folder), or restore the folder from a copy you trust"
    )
