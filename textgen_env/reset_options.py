"""Reading ``reset(options=...)``: a given prompt to start from and, for the vector env, which slots to reset.

    env.reset(options={"prompt": "The movie was"})                       # TextGenEnv: start from this prompt
    vec.reset(options={"reset_mask": np.array([True, False, True])})    # TextGenVectorEnv: reset slots 0 and 2
    vec.reset(options={"prompt": ["A story:", None, "Once"]})           # one prompt per slot (None: draw one)

A given prompt has no references (for reference-based rewards).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from textgen_env.prompts import Prompt

__all__ = ["SINGLE_ENV_OPTIONS", "VECTOR_ENV_OPTIONS", "single_env_options", "vector_env_options"]

SINGLE_ENV_OPTIONS = ("prompt",)
"""The option keys that `TextGenEnv.reset` accepts."""
VECTOR_ENV_OPTIONS = ("prompt", "reset_mask")
"""The option keys that `TextGenVectorEnv.reset` accepts."""


def single_env_options(options: Mapping[str, Any] | None) -> Prompt | None:
    """The prompt that `TextGenEnv.reset(options=options)` starts from, or None to draw one."""
    options = _checked_keys(options, SINGLE_ENV_OPTIONS)
    return _prompt(options.get("prompt"), "options['prompt']")


def vector_env_options(options: Mapping[str, Any] | None, num_envs: int) -> tuple[np.ndarray, list[Prompt | None]]:
    """The slots that `TextGenVectorEnv.reset(options=options)` resets, (num_envs,) bool, and each slot's prompt
    (None: draw one). Follows Gymnasium's ``SyncVectorEnv``: a mask is a bool ndarray with at least one True."""
    options = _checked_keys(options, VECTOR_ENV_OPTIONS)
    mask = options.get("reset_mask")
    if mask is None:
        mask = np.ones(num_envs, dtype=bool)
    elif not isinstance(mask, np.ndarray):
        raise TypeError(f"Expected options['reset_mask'] to be a numpy array, got {type(mask).__name__}")
    elif mask.dtype != np.bool_:
        raise TypeError(f"Expected options['reset_mask'] to have dtype bool, got {mask.dtype}")
    elif mask.shape != (num_envs,):
        raise ValueError(f"Expected options['reset_mask'] of shape ({num_envs},), got {mask.shape}")
    elif not mask.any():
        raise ValueError("Expected options['reset_mask'] to hold at least one True, got all False")
    given = options.get("prompt")
    if given is None or isinstance(given, str):
        prompts = [_prompt(given, "options['prompt']")] * num_envs
    elif isinstance(given, (list, tuple)):
        if len(given) != num_envs:
            raise ValueError(f"Expected options['prompt'] to hold {num_envs} prompts (one per env), got {len(given)}")
        prompts = [_prompt(p, f"options['prompt'][{i}]") for i, p in enumerate(given)]
    else:
        raise TypeError(
            f"Expected options['prompt'] to be a str or a list of {num_envs} str/None, got {type(given).__name__}"
        )
    return mask.copy(), prompts


def _checked_keys(options: Mapping[str, Any] | None, valid: tuple[str, ...]) -> Mapping[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"Expected options to be a dict or None, got {type(options).__name__}")
    unknown = sorted(str(key) for key in options if key not in valid)
    if unknown:
        hint = " ('reset_mask' is an option of the vector env, TextGenVectorEnv)" if "reset_mask" in unknown else ""
        raise ValueError(f"Expected options keys among {list(valid)}, got unknown key(s) {unknown}{hint}")
    return options


def _prompt(value: Any, name: str) -> Prompt | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"Expected {name} to be a str, got {type(value).__name__} {value!r}")
    return Prompt(value)
