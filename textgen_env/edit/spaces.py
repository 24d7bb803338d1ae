"""Observation and action spaces of TextEdit-v0, and the padding of token ids into their fixed-size arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from textgen_env.edit.config import TextEditConfig
from textgen_env.edit.operations import OPERATIONS

__all__ = ["edit_action_space", "edit_observation_space", "left_padded"]


def edit_action_space(config: TextEditConfig) -> spaces.Space:
    """``Discrete(K + 1)`` ('candidates') or ``MultiDiscrete([len(OPERATIONS), max_words, max_words])``."""
    if config.action_mode == "candidates":
        return spaces.Discrete(config.num_actions)
    return spaces.MultiDiscrete([len(OPERATIONS), config.max_words, config.max_words])


def edit_observation_space(config: TextEditConfig, vocab_size: int) -> spaces.Dict:
    """The current text's tokens, the edits left and, in 'candidates' mode, every candidate's result and op."""
    length = config.max_text_tokens
    text: dict[str, spaces.Space[Any]] = {
        "text_ids": spaces.Box(low=0, high=vocab_size - 1, shape=(length,), dtype=np.int64),
        "text_mask": spaces.Box(low=0, high=1, shape=(length,), dtype=np.int8),
        "edits_left": spaces.Discrete(config.max_edits + 1),
    }
    if config.action_mode == "structured":
        text["word_mask"] = spaces.MultiBinary(config.max_words)
        return spaces.Dict(text)
    rows = config.num_actions
    limit = float(config.max_words)
    text.update(
        {
            "candidate_ids": spaces.Box(low=0, high=vocab_size - 1, shape=(rows, length), dtype=np.int64),
            "candidate_mask": spaces.Box(low=0, high=1, shape=(rows, length), dtype=np.int8),
            "candidate_ops": spaces.MultiDiscrete([len(OPERATIONS)] * rows),
            "candidate_valid": spaces.MultiBinary(rows),
            "candidate_word_change": spaces.Box(low=-limit, high=limit, shape=(rows,), dtype=np.float32),
        }
    )
    return spaces.Dict(text)


def left_padded(sequences: Sequence[Sequence[int]], length: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(R, length) int64 ids and int8 mask, each row's last tokens right-aligned (longer rows keep their end)."""
    ids = np.full((len(sequences), length), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), length), dtype=np.int8)
    for row, tokens in enumerate(sequences):
        tokens = list(tokens)[-length:]
        if tokens:
            ids[row, -len(tokens) :] = tokens
            mask[row, -len(tokens) :] = 1
    return ids, mask
