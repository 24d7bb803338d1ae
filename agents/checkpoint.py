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
    """Whether `path` (after recovery from a kill mid-swap) holds a checkpoint to resume from."""
    folder = recover_folder(path) or Path(path)
    return (folder / "agent.pt").is_file() or (retired_folder(path) / "agent.pt").is_file()


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The state dict of the checkpoint folder `path`, recovered and checked (see `Agent.load`)."""
    folder = recover_folder(path) or Path(path)
    candidates = [c for c in (folder / "agent.pt", retired_folder(path) / "agent.pt") if c.is_file()]
    if not candidates:
        raise FileNotFoundError(f"Expected a checkpoint folder containing agent.pt, got {str(path)!r}")
    problems = []
    for file in candidates:
        try:
            state = torch.load(file, map_location="cpu", weights_only=False)
        except Exception as error:  # truncated zip, bad pickle, ...: name the file and go on to the retired copy
            problems.append(f"{str(file)!r} is corrupt or truncated ({type(error).__name__}: {error})")
            continue
        if isinstance(state, dict) and {"config", "policy", "optimizer"} <= set(state):
            if problems:
                warnings.warn(f"{problems[0]}; using the intact copy {str(file)!r}", stacklevel=3)
            return state
        problems.append(f"{str(file)!r} is not an agent checkpoint (no config, policy and optimizer state)")
    raise ValueError(f"Expected a readable checkpoint in {str(path)!r}, got: {'; '.join(problems)}")
