"""`TaskSource`: a task's items as an env's episodes: drawn per slot, in one split, at a fixed or curriculum difficulty.

The envs take ``task=`` (a name from `textgen_env.tasks.available_tasks`, ``"rg:<dataset>"`` or a `Task`) and hold
one `TaskSource`. Each episode draws its item from the slot's seeded generator (so slots reset with the same seed
get the same item, which GRPO's groups rely on) through the library's `TaskSampler`, which keeps the ``train`` and
``eval`` splits disjoint. With ``difficulty="auto"`` the library's `Curriculum` picks the level of every new item
from the correctness of the finished ones. The prompt is the item's messages (system prompt with the answer format,
then the question) rendered with the tokenizer's chat template, or as a plain transcript when it has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

import numpy as np
from transformers import PreTrainedTokenizerBase

from textgen_env.chat import render
from textgen_env.tasks import Curriculum, Task, TaskItem, TaskSampler, make_task

__all__ = ["TASK_SPLITS", "TaskSource", "render_item", "task_info"]

TASK_SPLITS = ("train", "eval")
"""The item splits: training episodes draw from ``train``, held-out evaluation from ``eval`` (never the same item)."""
_SEED_LIMIT = 2**63 - 1


class TaskSource:
    """The items, prompts and scores of one task for an env (see the module docstring).

    Args:
        task: a task name (``"arithmetic"``, ``"rg:<dataset>"``) or a `Task` instance.
        task_kwargs: constructor arguments of a named task.
        difficulty: a level of the task, ``"auto"`` (a curriculum) or None (the task's easiest level).
        split: ``"train"`` or ``"eval"``.
    """

    def __init__(
        self,
        task: str | Task,
        task_kwargs: Mapping[str, Any] | None = None,
        difficulty: int | str | None = None,
        split: str = "train",
    ) -> None:
        if isinstance(task, str):
            self.task: Task = make_task(task, **dict(task_kwargs or {}))
        elif isinstance(task, Task):
            if task_kwargs:
                raise ValueError(f"Expected task_kwargs only with a task name, got a Task instance and {task_kwargs!r}")
            self.task = task
        else:
            raise TypeError(f"Expected task to be a task name or a Task, got {type(task).__name__}")
        if split not in TASK_SPLITS:
            raise ValueError(f"Expected task_split to be one of {list(TASK_SPLITS)}, got {split!r}")
        self.split = split
        levels = tuple(self.task.difficulties)
        self.curriculum: Curriculum | None = None
        if difficulty == "auto":
            self.curriculum = Curriculum(levels)
            self._fixed = levels[0]
        elif difficulty is None:
            self._fixed = levels[0]
        elif isinstance(difficulty, bool) or not isinstance(difficulty, (int, np.integer)) or difficulty not in levels:
            raise ValueError(
                f"Expected difficulty for task {self.task.name!r} to be one of {list(levels)}, 'auto' or None, got "
                f"{difficulty!r}"
            )
        else:
            self._fixed = int(difficulty)

    @property
    def name(self) -> str:
        return str(self.task.name)

    @property
    def difficulty(self) -> int:
        """The level the next item is drawn at (the curriculum's current one with ``difficulty="auto"``)."""
        return int(self.curriculum.difficulty) if self.curriculum is not None else self._fixed

    def sample(self, rng: np.random.Generator) -> TaskItem:
        """One item of the split at the current difficulty, drawn with `rng` only (same state -> same item)."""
        seed = int(rng.integers(_SEED_LIMIT))
        split = cast(Literal["train", "eval"], self.split)  # checked in __init__
        return TaskSampler(self.task, seed=seed, split=split, difficulty=self.difficulty).next()

    def score(self, completion: str, item: TaskItem) -> dict[str, float]:
        """The task's score of `completion` (``correct``, ``format`` and any others), as floats."""
        return {key: float(value) for key, value in self.task.score(completion, item).items()}

    def record(self, correct: float) -> None:
        """Tell the curriculum (if any) whether a finished episode was correct."""
        if self.curriculum is not None:
            self.curriculum.update(1.0 if correct >= 0.5 else 0.0)

    def log(self) -> dict[str, float]:
        """Namespaced values for a training log: ``task/difficulty`` (the current level) and, with a curriculum, its
        ``task/success_rate`` (over its current window, NaN when empty) and ``task/level_changes``."""
        values = {"task/difficulty": float(self.difficulty)}
        if self.curriculum is not None:
            state = self.curriculum.state()
            values["task/success_rate"] = float(state["success_rate"])
            values["task/level_changes"] = float(state["level_changes"])
        return values


def render_item(tokenizer: PreTrainedTokenizerBase, item: TaskItem, *, template: bool = True) -> str:
    """The prompt text of `item`: its messages through the chat template (when `template` and the tokenizer has
    one), else ``System: ... / User: ... / Assistant:``."""
    return render(tokenizer, item.messages(), template=template)


def task_info(name: str, item: TaskItem, scores: Mapping[str, float] | None = None) -> dict[str, Any]:
    """``info["task"]``: the task's name, the item's question, reference answer and difficulty, and once the episode
    ended its scores (``correct``, ``format``, ...)."""
    info: dict[str, Any] = {
        "name": name,
        "question": item.question,
        "answer": item.answer,
        "difficulty": int(item.difficulty),
    }
    if scores is not None:
        info.update(scores)
    return info
