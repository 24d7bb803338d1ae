"""The curriculum behind ``difficulty="auto"``: moves the level to keep the running success rate in a target band."""

from __future__ import annotations

import math
import numbers
from collections import deque
from collections.abc import Sequence
from typing import Any

from textgen_env.validation import check_int, check_unit

__all__ = ["Curriculum"]


class Curriculum:
    """Keeps the running success rate inside ``target`` by moving one level at a time.

    Every ``update(correct)`` adds one outcome to a window of the last ``window`` outcomes at the current level.
    When the window is full, a rate above ``target[1]`` moves one level harder, below ``target[0]`` one level
    easier (at the ends it stays), and the window starts empty at the new level. The rule has no randomness: the
    same outcomes give the same levels.

    Args:
        levels: the task's difficulties, easiest first.
        start: the first level (default: the easiest).
        target: the band (low, high) of success rates to stay in, 0 <= low < high <= 1.
        window: how many outcomes at one level decide a move.

    Log ``state()`` once per iteration: ``difficulty``, ``success_rate`` (over the current window, NaN when
    empty), ``window_size`` (outcomes in it), ``level_changes`` and ``updates`` (all outcomes so far).
    """

    def __init__(
        self,
        levels: Sequence[int],
        *,
        start: int | None = None,
        target: tuple[float, float] = (0.5, 0.8),
        window: int = 32,
    ) -> None:
        levels = tuple(levels)
        if not levels or any(isinstance(x, bool) or not isinstance(x, numbers.Integral) for x in levels):
            raise ValueError(f"Expected levels to be a non-empty sequence of ints, got {levels!r}")
        if not (isinstance(target, (tuple, list)) and len(target) == 2):
            raise ValueError(f"Expected target to be a pair (low, high), got {target!r}")
        check_unit("target[0]", target[0])
        check_unit("target[1]", target[1])
        if not target[0] < target[1]:
            raise ValueError(f"Expected target to be (low, high) with low < high, got {target!r}")
        check_int("window", window, 1)
        if start is not None and start not in levels:
            raise ValueError(f"Expected start to be one of {list(levels)}, got {start!r}")
        self.levels = levels
        self.target = (float(target[0]), float(target[1]))
        self.window = window
        self._index = levels.index(start) if start is not None else 0
        self._outcomes: deque[float] = deque(maxlen=window)
        self.level_changes = 0
        self.updates = 0

    @property
    def difficulty(self) -> int:
        """The current level."""
        return int(self.levels[self._index])

    @property
    def success_rate(self) -> float:
        """The mean outcome in the current window (NaN before any outcome at this level)."""
        return sum(self._outcomes) / len(self._outcomes) if self._outcomes else math.nan

    def update(self, correct: float) -> None:
        """Add one outcome in [0, 1] (1 = solved) and move the level if the full window says so."""
        check_unit("correct", correct)
        self._outcomes.append(float(correct))
        self.updates += 1
        if len(self._outcomes) < self.window:
            return
        rate = self.success_rate
        step = 1 if rate > self.target[1] else -1 if rate < self.target[0] else 0
        new_index = min(max(self._index + step, 0), len(self.levels) - 1)
        if new_index != self._index:
            self._index = new_index
            self._outcomes.clear()
            self.level_changes += 1

    def state(self) -> dict[str, Any]:
        """A flat dict to log each iteration (see the class docstring)."""
        return {
            "difficulty": self.difficulty,
            "success_rate": self.success_rate,
            "window_size": len(self._outcomes),
            "level_changes": self.level_changes,
            "updates": self.updates,
        }

    def __repr__(self) -> str:
        return f"Curriculum(levels={list(self.levels)}, difficulty={self.difficulty}, target={self.target})"
