"""Observation and action space builders for the env's modes (tokens | hidden, vocab | top_k)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from textgen_env.config import TextGenConfig

__all__ = ["HIDDEN_BOUND", "action_space", "observation_space"]

HIDDEN_BOUND = 1e4
"""Hidden observations are clipped to [-HIDDEN_BOUND, HIDDEN_BOUND] (real hidden states stay far inside)."""


def action_space(config: TextGenConfig, vocab_size: int) -> spaces.Discrete:
    """``Discrete(vocab_size)`` in 'vocab' mode, ``Discrete(top_k)`` in 'top_k' mode."""
    if config.action_mode == "top_k":
        if config.top_k > vocab_size:
            raise ValueError(f"Expected top_k <= the vocabulary size {vocab_size}, got {config.top_k}")
        return spaces.Discrete(config.top_k)
    return spaces.Discrete(vocab_size)


def observation_space(config: TextGenConfig, vocab_size: int, hidden_size: int = 0) -> spaces.Space:
    """Token ids and attention mask of fixed length (left-padded), or the model's hidden state."""
    if config.observation_mode == "hidden":
        return spaces.Box(low=-HIDDEN_BOUND, high=HIDDEN_BOUND, shape=(hidden_size,), dtype=np.float32)
    length = config.sequence_length
    return spaces.Dict(
        {
            "input_ids": spaces.Box(low=0, high=vocab_size - 1, shape=(length,), dtype=np.int64),
            "attention_mask": spaces.Box(low=0, high=1, shape=(length,), dtype=np.int8),
        }
    )
