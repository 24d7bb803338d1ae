"""A learned reward: a Bradley-Terry reward model (a scalar head on a small LM trunk) scoring completions in batches.

The folder is what ``textgen-env reward-model train`` writes (`agents.reward_model`): a Hugging Face
sequence-classification model with one output, its tokenizer, and ``reward_model.json`` (how texts are encoded, the
mean and spread of the training scores, the training metrics). The model has its own tokenizer, so it need not share
the policy's. Prompt and completion are encoded as a text pair by `encode_pairs`, the one encoding that training and
scoring share.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from textgen_env.rewards.base import Reward
from textgen_env.storage import recover_folder

if TYPE_CHECKING:
    from transformers import BatchEncoding

__all__ = ["REWARD_MODEL_FILE", "RewardModelReward", "check_metadata", "encode_pairs", "load_reward_model"]

REWARD_MODEL_FILE = "reward_model.json"
"""The file that marks a folder as a reward model and describes it."""
FORMAT = "textgen-env reward model"


def encode_pairs(tokenizer: Any, prompts: Sequence[str], completions: Sequence[str], max_length: int) -> BatchEncoding:
    """Tokenize (prompt, completion) text pairs, padded on the right and cut to `max_length` (the prompt first)."""
    return tokenizer(
        list(prompts),
        list(completions),
        padding=True,
        truncation="longest_first",
        max_length=max_length,
        return_tensors="pt",
    )


def check_metadata(meta: dict[str, Any], where: str) -> dict[str, Any]:
    """`meta` (a ``reward_model.json``) if its numbers are sound: ``score_mean`` finite, ``score_std`` finite and
    positive (the scores are divided by it), ``max_length`` a positive int; a missing one takes its default.

    Raises:
        ValueError: naming `where` and the field (a zero, negative or NaN spread would flip or NaN every reward).
    """
    hint = "retrain it with `textgen-env reward-model train`"
    for key, positive in (("score_mean", False), ("score_std", True)):
        value = meta.get(key, 1.0)
        sound = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        if not sound or (positive and value <= 0):
            kind = "a finite number > 0" if positive else "a finite number"
            raise ValueError(f"Expected {key} in {where} to be {kind}, got {value!r:.80} ({hint})")
    length = meta.get("max_length", 256)
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"Expected max_length in {where} to be a positive int, got {length!r:.80} ({hint})")
    return meta


def load_reward_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Any, Any, dict]:
    """The model (eval mode), tokenizer and metadata of a reward-model folder.

    Raises:
        FileNotFoundError: `path` is not a folder.
        ValueError: the folder is not a reward model (no ``reward_model.json`` of this format, or no model files),
            or its ``reward_model.json`` holds an unsound number (see `check_metadata`).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(path)
    if folder.is_dir() or folder.with_name(f".{folder.name}.old").is_dir():
        recover_folder(folder)  # a kill during a save leaves the previous version aside: put it back
    if not folder.is_dir():
        raise FileNotFoundError(f"Expected a reward-model folder at {os.fspath(path)!r}, got no such folder")
    marker = folder / REWARD_MODEL_FILE
    hint = "train one with `textgen-env reward-model train --data LOG --output FOLDER`"
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # unreadable, not JSON, or nested too deep to read
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(
            f"Expected a reward-model folder with a {REWARD_MODEL_FILE} written by textgen-env, got "
            f"{os.fspath(path)!r} without one ({hint})"
        )
    check_metadata(meta, repr(os.fspath(marker)))
    if not (folder / "config.json").is_file():
        raise ValueError(
            f"Expected a reward-model folder with config.json, got {os.fspath(path)!r} without it ({hint})"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as error:
        raise ValueError(f"Expected a loadable reward model in {os.fspath(path)!r}, got an error: {error}") from error
    if model.config.num_labels != 1:
        raise ValueError(
            f"Expected a reward model with one output, got {model.config.num_labels} in {os.fspath(path)!r}"
        )
    return model.to(device).eval(), tokenizer, meta


class RewardModelReward(Reward):
    """The score of a trained reward model for each (prompt, completion), computed in batches.

    Range: unbounded; with ``normalize=True`` (default) scores are centred and scaled by the mean and standard
    deviation of the model's scores on its training completions, so typical values lie in about [-2, 2]. Every
    completion is scored, finished or not, so ``reward_mode="dense"`` works too (at one model call per step).

    Args:
        path: a folder written by ``textgen-env reward-model train``.
        normalize: centre and scale the scores with the training statistics.
        batch_size: completions per forward pass.
        device: where the reward model runs.
    """

    name = "reward-model"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        normalize: bool = True,
        batch_size: int = 32,
        device: str | torch.device = "cpu",
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"Expected path to be a reward-model folder, got {type(path).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Expected batch_size to be a positive int, got {batch_size!r}")
        self.model, self.tokenizer, self.meta = load_reward_model(path, device)
        self.path, self.batch_size, self.device = Path(path), batch_size, torch.device(device)
        self.max_length = int(self.meta.get("max_length", 256))  # the metadata was checked by load_reward_model
        self.shift = float(self.meta.get("score_mean", 0.0)) if normalize else 0.0
        self.scale = float(self.meta.get("score_std", 1.0)) if normalize else 1.0

    @torch.no_grad()
    def scores(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """Raw model scores, one per (prompt, completion)."""
        values = []
        for start in range(0, len(completions), self.batch_size):
            end = start + self.batch_size
            batch = encode_pairs(self.tokenizer, prompts[start:end], completions[start:end], self.max_length)
            values.append(self.model(**batch.to(self.device)).logits[:, 0].float().cpu())  # (B,)
        return torch.cat(values).double().numpy() if values else np.zeros(0)

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        return (self.scores(prompts, completions) - self.shift) / self.scale
