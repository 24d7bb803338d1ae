"""Reading ``reset(options=...)``: a given prompt (or task item) to start from and, for the vector env, which slots
to reset.

    env.reset(options={"prompt": "The movie was"})                       # TextGenEnv: start from this prompt
    vec.reset(options={"reset_mask": np.array([True, False, True])})    # TextGenVectorEnv: reset slots 0 and 2
    vec.reset(options={"prompt": ["A story:", None, "Once"]})           # one prompt per slot (None: draw one)
    vec.reset(options={"item": [item, item, None]})                    # a task env: these items (None: draw one)

A given prompt has no references (for reference-based rewards). A given task item (a `textgen_env.tasks.TaskItem`,
for example a held-out one of `agents.evaluation.held_out_items`) is rendered and scored as a drawn one, but its
outcome does not move a ``difficulty="auto"`` curriculum: it is how an evaluation steps a task env.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from textgen_env.prompts import Prompt
from textgen_env.tasks.base import TaskItem

__all__ = ["SINGLE_ENV_OPTIONS", "VECTOR_ENV_OPTIONS", "single_env_options", "vector_env_options"]

SINGLE_ENV_OPTIONS = ("prompt", "item")
"""The option keys that `TextGenEnv.reset` accepts."""
VECTOR_ENV_OPTIONS = ("prompt", "item", "reset_mask")
"""The option keys that `TextGenVectorEnv.reset` accepts."""


Start = Prompt | TaskItem | None
"""Where a slot starts: a given prompt, a given task item, or None to draw one."""


def single_env_options(options: Mapping[str, Any] | None) -> Start:
    """The prompt or task item that `TextGenEnv.reset(options=options)` starts from, or None to draw one."""
    options = _checked_keys(options, SINGLE_ENV_OPTIONS)
    if options.get("item") is not None:
        if options.get("prompt") is not None:
            raise ValueError("Expected options['prompt'] or options['item'], got both")
        return _item(options["item"], "options['item']")
    return _prompt(options.get("prompt"), "options['prompt']")


def vector_env_options(options: Mapping[str, Any] | None, num_envs: int) -> tuple[np.ndarray, list[Start]]:
    """The slots that `TextGenVectorEnv.reset(options=options)` resets, (num_envs,) bool, and where each starts (a
    prompt, a task item, None: draw one). Follows Gymnasium's ``SyncVectorEnv``: a mask is a bool ndarray with at
    least one True."""
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
    if options.get("item") is not None:
        if options.get("prompt") is not None:
            raise ValueError("Expected options['prompt'] or options['item'], got both")
        items = options["item"]
        if not isinstance(items, (list, tuple)):
            return mask.copy(), [_item(items, "options['item']")] * num_envs
        if len(items) != num_envs:
            raise ValueError(f"Expected options['item'] to hold {num_envs} items (one per env), got {len(items)}")
        return mask.copy(), [_item(item, f"options['item'][{i}]") for i, item in enumerate(items)]
    given = options.get("prompt")
    prompts: list[Start]
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


def _item(value: Any, name: str) -> TaskItem | None:
    if value is None:
        return None
    if not isinstance(value, TaskItem):
        raise TypeError(f"Expected {name} to be a textgen_env.tasks.TaskItem, got {type(value).__name__}")
    return value


def _prompt(value: Any, name: str) -> Prompt | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"Expected {name} to be a str, got {type(value).__name__} {value!r}")
    return Prompt(value)
