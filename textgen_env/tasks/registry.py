"""The task registry: `make_task(name, **kwargs)`, `available_tasks()` and `register_task` for your own tasks."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from textgen_env.tasks.base import Task, TaskBase

__all__ = ["RG_PREFIX", "available_tasks", "make_task", "register_task"]

RG_PREFIX = "rg:"
"""``make_task("rg:<dataset>", ...)`` wraps a reasoning-gym dataset (see `textgen_env.tasks.reasoning_gym`)."""

TaskFactory = Callable[..., Task]
_FACTORIES: dict[str, TaskFactory] = {}


def register_task(name: str, factory: TaskFactory) -> None:
    """Make `factory(**kwargs)` available as ``make_task(name, **kwargs)``; an existing name raises ValueError."""
    if not isinstance(name, str) or not name or name.startswith(RG_PREFIX):
        raise ValueError(f"Expected name to be a non-empty string not starting with {RG_PREFIX!r}, got {name!r}")
    if name in _FACTORIES:
        raise ValueError(f"Expected a new task name, got {name!r}, which is already registered")
    if not callable(factory):
        raise ValueError(f"Expected factory to be callable (**kwargs) -> Task, got {factory!r}")
    _FACTORIES[name] = factory


def available_tasks() -> list[str]:
    """The registered names, sorted (reasoning-gym datasets are reached as ``"rg:<dataset>"`` besides these)."""
    return sorted(_FACTORIES)


def make_task(name: str, **kwargs: Any) -> Task:
    """The task called `name`, built with `kwargs`.

    Raises:
        ValueError: for an unknown name, listing the valid ones (and ``rg:<dataset>``).
    """
    if isinstance(name, str) and name.startswith(RG_PREFIX):
        from textgen_env.tasks.reasoning_gym import ReasoningGymTask

        return ReasoningGymTask(name[len(RG_PREFIX) :], **kwargs)
    if name not in _FACTORIES:
        close = difflib.get_close_matches(str(name), list(_FACTORIES), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Expected task to be one of {available_tasks()} or 'rg:<reasoning-gym dataset>', got {name!r}.{hint}"
        )
    return _FACTORIES[name](**kwargs)


def _register_builtins() -> None:
    from textgen_env.tasks.arithmetic import ArithmeticTask
    from textgen_env.tasks.comparison import ComparisonTask
    from textgen_env.tasks.countdown import CountdownTask
    from textgen_env.tasks.counting import CountingTask
    from textgen_env.tasks.jsonl import JsonlTask
    from textgen_env.tasks.sorting import SortingTask
    from textgen_env.tasks.strings import StringTask
    from textgen_env.tasks.word_problems import WordProblemTask

    builtins: tuple[type[TaskBase], ...] = (
        ArithmeticTask,
        ComparisonTask,
        CountdownTask,
        CountingTask,
        SortingTask,
        StringTask,
        WordProblemTask,
    )
    for task_class in builtins:
        register_task(task_class.name, task_class)
    register_task("jsonl", JsonlTask)


_register_builtins()
