"""Training and held-out evaluation items of a task, split by a hash of each item's content so they never overlap."""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np

from textgen_env.tasks.base import Task, TaskItem, check_difficulty
from textgen_env.tasks.curriculum import Curriculum
from textgen_env.validation import check_choice, check_int, check_unit

__all__ = ["TaskSampler", "eval_bucket", "is_eval_item"]

Split = Literal["train", "eval"]


def eval_bucket(canonical: str) -> float:
    """A number in [0, 1) fixed by the item's canonical text (a BLAKE2b hash): the same on every machine and run."""
    digest = hashlib.blake2b(canonical.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_eval_item(item: TaskItem, eval_fraction: float) -> bool:
    """Whether `item` belongs to the held-out split: its hash bucket is below `eval_fraction`."""
    return eval_bucket(item.canonical) < eval_fraction


class TaskSampler:
    """Draws a task's items for one split: ``train`` and ``eval`` items never share content.

    The split hashes each item's ``canonical`` text (its content without the phrasing, so a held-out question is
    not trained on in another wording): a fraction ``eval_fraction`` of all possible items is held out, the same
    fraction on every machine and seed. Each split also draws from its own seed stream.

    Args:
        task: the task.
        seed: the seed of this sampler's generator (with the split, so train and eval streams differ).
        split: ``"train"`` or ``"eval"``.
        difficulty: a level of the task, or ``"auto"`` (train only): a `Curriculum` chooses it from the outcomes
            passed to ``update``.
        eval_fraction: the share of item space held out for evaluation, in (0, 1).
        curriculum: the curriculum for ``"auto"`` (default: ``Curriculum(task.difficulties)``).
        max_tries: draws to find an item of this split before RuntimeError (a task with too few items).
    """

    def __init__(
        self,
        task: Task,
        *,
        seed: int,
        split: Split = "train",
        difficulty: int | Literal["auto"] = "auto",
        eval_fraction: float = 0.2,
        curriculum: Curriculum | None = None,
        max_tries: int = 1000,
    ) -> None:
        check_int("seed", seed, 0)
        check_choice("split", split, ("train", "eval"))
        check_unit("eval_fraction", eval_fraction)
        if not 0.0 < eval_fraction < 1.0:
            raise ValueError(f"Expected eval_fraction to be in (0, 1), got {eval_fraction!r}")
        check_int("max_tries", max_tries, 1)
        self.task = task
        self.split: Split = split
        self.eval_fraction = float(eval_fraction)
        self.max_tries = max_tries
        self.rng = np.random.default_rng([seed, 0 if split == "train" else 1])
        self.curriculum: Curriculum | None = None
        self._fixed: int | None = None
        if difficulty == "auto":
            if split == "eval":
                raise ValueError(
                    "Expected an int difficulty for split='eval' (held-out accuracy is reported per level), got 'auto'"
                )
            self.curriculum = curriculum if curriculum is not None else Curriculum(task.difficulties)
        else:
            self._fixed = check_difficulty(task.name, difficulty, task.difficulties)
            if curriculum is not None:
                raise ValueError("Expected curriculum only with difficulty='auto', got a fixed difficulty")

    @property
    def difficulty(self) -> int:
        """The level the next item is drawn at."""
        return self.curriculum.difficulty if self.curriculum is not None else int(self._fixed)  # type: ignore[arg-type]  # one of the two is set in __init__

    def _wanted(self, item: TaskItem) -> bool:
        return is_eval_item(item, self.eval_fraction) == (self.split == "eval")

    def next(self) -> TaskItem:
        """The next item of this split at the current difficulty."""
        difficulty = self.difficulty
        for _ in range(self.max_tries):
            item = self.task.sample(self.rng, difficulty)
            if self._wanted(item):
                return item
        raise RuntimeError(
            f"Task {self.task.name!r} gave no {self.split} item at difficulty {difficulty} in {self.max_tries} "
            f"draws; its item space is too small for eval_fraction={self.eval_fraction}"
        )

    def take(self, count: int, *, unique: bool = True) -> list[TaskItem]:
        """`count` items; with `unique`, no two share content (RuntimeError if the split has fewer)."""
        check_int("count", count, 0)
        items: list[TaskItem] = []
        seen: set[str] = set()
        misses = 0
        while len(items) < count:
            item = self.next()
            if unique and item.canonical in seen:
                misses += 1
                if misses > self.max_tries:
                    raise RuntimeError(
                        f"Task {self.task.name!r} has fewer than {count} distinct {self.split} items at difficulty "
                        f"{self.difficulty} (found {len(items)})"
                    )
                continue
            seen.add(item.canonical)
            items.append(item)
        return items

    def update(self, correct: float) -> None:
        """Report one outcome (1 = solved) to the curriculum; without ``"auto"`` nothing changes."""
        if self.curriculum is not None:
            self.curriculum.update(correct)
