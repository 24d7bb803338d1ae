"""Reading agent checkpoints safely: recovery from a kill mid-swap, the retired copy, clear errors for bad files."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from textgen_env.storage import recover_folder, retired_folder

__all__ = ["checkpoint_exists", "read_checkpoint"]


def checkpoint_exists(path: str | os.PathLike[str]) -> bool:
    """Whether `path` or its retired copy (a kill mid-swap) holds a checkpoint to resume from; changes nothing."""
    return any((folder / "agent.pt").is_file() for folder in (Path(path), retired_folder(path)))


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The state dict of the checkpoint folder `path` (see `Agent.load`).

    The folder is read first, then its retired copy (`textgen_env.storage.retired_folder`: what a kill between the
    two renames of a save leaves): the first that loads and holds an agent's state wins. A good folder is then
    tidied (`recover_folder`); a corrupt one is named in the warning or the error.
    """
    folder, retired = Path(path), retired_folder(path)
    candidates = [f / "agent.pt" for f in (folder, retired) if (f / "agent.pt").is_file()]
    if not candidates:
        raise FileNotFoundError(f"Expected a checkpoint folder containing agent.pt, got {str(path)!r}")
    problems = []
    for file in candidates:
        try:
            state = torch.load(file, map_location="cpu", weights_only=False)
        except Exception as error:  # truncated zip, bad pickle, ...: name the file and go on to the retired copy
            problems.append(f"{str(file)!r} is corrupt or truncated ({type(error).__name__}: {error})")
            continue
        if not (isinstance(state, dict) and {"config", "policy", "optimizer"} <= set(state)):
            problems.append(f"{str(file)!r} is not an agent checkpoint (no config, policy and optimizer state)")
            continue
        if problems:
            warnings.warn(f"{problems[0]}; using the intact copy {str(file)!r}", stacklevel=3)
        elif file.parent == folder or not folder.exists():
            recover_folder(folder)  # drop a finished swap's leftover, or put the retired copy back in place
        return state
    raise ValueError(f"Expected a readable checkpoint in {str(path)!r}, got: {'; '.join(problems)}")
