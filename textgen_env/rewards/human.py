"""Feedback from people: ratings and pairwise preferences, asked in the terminal or through a callback, and logged.

Every answer is appended to a JSONL log the moment it is given (write, flush, fsync), so a crash, a Ctrl-C or a
killed notebook kernel loses at most the answer being typed. `ReplayReward` turns a ratings log back into a
reward (to retrain or evaluate without asking again), and `load_preferences` reads a preferences log, e.g. to train
a reward model or to run DPO.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np

from textgen_env.rewards.base import Reward
from textgen_env.rewards.jsonl import append_jsonl, read_jsonl, read_records, warn_cut_lines

__all__ = [
    "HumanFeedbackReward",
    "PairwisePreference",
    "Preference",
    "ReplayReward",
    "append_jsonl",
    "load_preferences",
    "load_ratings",
    "read_jsonl",
]

PathLike = str | os.PathLike
PreferenceChoice = Literal["a", "b", "tie"]
_CHOICES: dict[str, PreferenceChoice] = {"a": "a", "b": "b", "t": "tie", "tie": "tie", "=": "tie"}


def _timestamp() -> str:
    return datetime.now(timezone.utc).isoformat()


def _require_keys(record: dict[str, Any], keys: Sequence[str], where: str) -> None:
    missing = [key for key in keys if key not in record]
    if missing:
        raise ValueError(f"Expected log records with keys {list(keys)}, got one without {missing} on {where}")


def load_ratings(path: PathLike) -> dict[tuple[str, str], float]:
    """(prompt, completion) -> reward from a `HumanFeedbackReward` log; a later rating of a pair replaces earlier.

    Preference records in the same log (the feedback web page writes both kinds) are skipped. A record whose
    prompt or completion is not text, or whose reward is not a finite number, is an error that names its line."""
    records, cut = read_records(path)
    warn_cut_lines(path, cut)
    ratings = {}
    for where, record in records:
        if "preference" in record and "completion" not in record:
            continue
        _require_keys(record, ("prompt", "completion", "reward"), where)
        prompt, completion, reward = record["prompt"], record["completion"], record["reward"]
        if not isinstance(prompt, str) or not isinstance(completion, str):
            raise ValueError(f"Expected prompt and completion to be strings in {where}, got {prompt!r:.80}")
        if isinstance(reward, bool) or not isinstance(reward, numbers.Real) or not math.isfinite(reward):
            raise ValueError(f"Expected reward to be a finite number in {where}, got {reward!r:.80}")
        ratings[prompt, completion] = float(reward)
    return ratings


def _check_log_path(log_path: object) -> Path | None:
    if log_path is not None and not isinstance(log_path, (str, os.PathLike)):
        raise TypeError(f"Expected log_path to be a path or None, got {type(log_path).__name__}")
    return None if log_path is None else Path(log_path)


def _check_callables(callback: object, input_fn: object, print_fn: object) -> None:
    functions = {"input_fn": input_fn, "print_fn": print_fn}
    if callback is not None:
        functions["callback"] = callback
    for name, function in functions.items():
        if not callable(function):
            raise TypeError(f"Expected {name} to be callable, got {type(function).__name__}")


class HumanFeedbackReward(Reward):
    """A person's rating of each finished completion, asked in the terminal or through a callback.

    The rating, on the scale ``(low, high)`` (1-5 by default), maps linearly to a reward in [-1, 1]: low -> -1,
    high -> 1. Range [-1, 1]; unfinished completions (``done=False``) score 0 without asking, so use it with
    ``reward_mode="sparse"``. Each answer is appended to `log_path` at once (see `append_jsonl`) as a record with
    ``prompt``, ``completion``, ``rating``, ``reward``, ``scale`` and ``timestamp``; with `reuse_ratings`, pairs
    already in the log (from this run or an earlier, perhaps crashed one) are not asked again.

    Args:
        callback: ``callback(prompt, completion) -> rating`` for notebooks and front ends; ``None`` asks in the
            terminal through `input_fn` and `print_fn`, asking again until the answer is a number on the scale.
        log_path: the JSONL log; ``None`` keeps no log (answers are lost with the process).
        scale: the lowest and highest rating.
        input_fn: reads an answer (``input`` by default; inject another to script or test).
        print_fn: shows the texts and messages.
        reuse_ratings: take ratings of already-rated pairs from the log instead of asking again.

    >>> answers = iter(["great", "5"])
    >>> reward = HumanFeedbackReward(log_path=None, input_fn=lambda message: next(answers), print_fn=lambda *a: None)
    >>> reward(["Tell a joke."], ["Why did the chicken cross the road?"], [True])
    array([1.])
    """

    name = "human"

    def __init__(
        self,
        *,
        callback: Callable[[str, str], float] | None = None,
        log_path: PathLike | None = "human_feedback.jsonl",
        scale: tuple[float, float] = (1, 5),
        input_fn: Callable[[str], str] = input,
        print_fn: Callable[..., Any] = print,
        reuse_ratings: bool = True,
    ) -> None:
        _check_callables(callback, input_fn, print_fn)
        if (
            not isinstance(scale, (tuple, list))
            or len(scale) != 2
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in scale)
            or not scale[0] < scale[1]
        ):
            raise ValueError(
                f"Expected scale to be a pair of finite numbers (low, high) with low < high, got {scale!r}"
            )
        self.callback = callback
        self.log_path = _check_log_path(log_path)
        self.scale = (float(scale[0]), float(scale[1]))
        self.input_fn = input_fn
        self.print_fn = print_fn
        self.reuse_ratings = bool(reuse_ratings)
        self._known: dict[tuple[str, str], float] | None = None  # read from the log on the first call

    def to_reward(self, rating: float) -> float:
        """Map a rating on `scale` linearly onto [-1, 1]."""
        low, high = self.scale
        return -1.0 + 2.0 * (rating - low) / (high - low)

    def _scale_text(self) -> str:
        return f"{self.scale[0]:g} to {self.scale[1]:g}"

    def _check_rating(self, value: object, source: str) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"Expected {source} to be a number from {self._scale_text()}, got {value!r}")
        if not self.scale[0] <= float(value) <= self.scale[1]:  # also rejects NaN
            raise ValueError(f"Expected {source} to be a number from {self._scale_text()}, got {value!r}")
        return float(value)

    def _ask_terminal(self, prompt: str, completion: str, position: str) -> float:
        self.print_fn(f"\n{position} Prompt:\n{prompt}\n\nCompletion:\n{completion}\n")
        question = f"Rating ({self._scale_text()}, {self.scale[1]:g} = best): "
        while True:
            answer = self.input_fn(question).strip()
            try:
                return self._check_rating(float(answer), "a rating")
            except ValueError:
                self.print_fn(f"Expected a number from {self._scale_text()}, got {answer!r}; try again.")

    def rate(self, prompt: str, completion: str, position: str = "") -> float:
        """Ask for one rating (terminal or callback), log it, and return its reward in [-1, 1]."""
        if self.callback is not None:
            rating = self._check_rating(self.callback(prompt, completion), "the callback's rating")
        else:
            rating = self._ask_terminal(prompt, completion, position)
        reward = self.to_reward(rating)
        if self.log_path is not None:
            record = {
                "prompt": prompt,
                "completion": completion,
                "rating": rating,
                "reward": reward,
                "scale": list(self.scale),
                "timestamp": _timestamp(),
            }
            append_jsonl(self.log_path, record)
        if self._known is not None:
            self._known[prompt, completion] = reward
        return reward

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        if self._known is None:
            exists = self.reuse_ratings and self.log_path is not None and self.log_path.is_file()
            self._known = load_ratings(self.log_path) if exists else {}  # type: ignore[arg-type]  # set when exists
        scores = np.zeros(len(completions))
        finished = [i for i, done in enumerate(dones) if done]
        for count, i in enumerate(finished, start=1):
            key = (prompts[i], completions[i])
            if self.reuse_ratings and key in self._known:
                scores[i] = self._known[key]
            else:
                scores[i] = self.rate(prompts[i], completions[i], position=f"[{count}/{len(finished)}]")
        return scores


class ReplayReward(Reward):
    """The ratings of a `HumanFeedbackReward` log, replayed: the logged reward of a known (prompt, completion)
    pair, `default` for an unknown finished one, 0 for unfinished ones (as `HumanFeedbackReward` gives).

    Range [-1, 1] (or `default`). `misses` counts the finished completions that were not in the log.

    Args:
        log_path: a log written by `HumanFeedbackReward`; read once, at construction.
        default: the score of a finished completion nobody rated.
    """

    name = "human-replay"

    def __init__(self, log_path: PathLike, default: float = 0.0) -> None:
        path = _check_log_path(log_path)
        if path is None or not path.is_file():
            raise FileNotFoundError(
                f"Expected log_path to be a ratings log written by HumanFeedbackReward, got "
                f"{log_path!r}, which is not a file"
            )
        if isinstance(default, bool) or not isinstance(default, numbers.Real) or not math.isfinite(default):
            raise ValueError(f"Expected default to be a finite number, got {default!r}")
        self.log_path = path
        self.default: float = float(default)
        self.ratings: dict[tuple[str, str], float] = load_ratings(path)
        self.misses: int = 0

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        scores = np.zeros(len(completions))
        for i, (prompt, completion, done) in enumerate(zip(prompts, completions, dones)):
            if done:
                scores[i] = self.ratings.get((prompt, completion), self.default)
                self.misses += (prompt, completion) not in self.ratings
        return scores


@dataclasses.dataclass(frozen=True)
class Preference:
    """One pairwise judgement: which of two completions of `prompt` a person preferred."""

    prompt: str
    completion_a: str
    completion_b: str
    preference: PreferenceChoice
    """``"a"``, ``"b"`` or ``"tie"``."""
    timestamp: str = ""

    @property
    def chosen(self) -> str | None:
        """The preferred completion; ``None`` for a tie."""
        return {"a": self.completion_a, "b": self.completion_b}.get(self.preference)

    @property
    def rejected(self) -> str | None:
        """The other completion; ``None`` for a tie."""
        return {"a": self.completion_b, "b": self.completion_a}.get(self.preference)


class PairwisePreference:
    """Asks which of two completions of a prompt is better, in the terminal or through a callback, and logs it.

    Each answer is appended to `log_path` at once as a record with ``prompt``, ``completion_a``,
    ``completion_b``, ``preference`` (``"a"``, ``"b"`` or ``"tie"``) and ``timestamp``; read it back with
    `load_preferences`.

    Args:
        callback: ``callback(prompt, completion_a, completion_b) -> "a" | "b" | "tie"``; ``None`` asks in the
            terminal, accepting a, b, t or tie (any case) and asking again otherwise.
        log_path: the JSONL log; ``None`` keeps no log.
        input_fn: reads an answer (``input`` by default).
        print_fn: shows the texts and messages.

    >>> judge = PairwisePreference(log_path=None, input_fn=lambda message: "B", print_fn=lambda *a: None)
    >>> judge.compare("Say hi.", "Go away.", "Hello there!")
    'b'
    """

    def __init__(
        self,
        *,
        callback: Callable[[str, str, str], str] | None = None,
        log_path: PathLike | None = "preferences.jsonl",
        input_fn: Callable[[str], str] = input,
        print_fn: Callable[..., Any] = print,
    ) -> None:
        _check_callables(callback, input_fn, print_fn)
        self.callback = callback
        self.log_path = _check_log_path(log_path)
        self.input_fn = input_fn
        self.print_fn = print_fn

    def _ask_terminal(self, prompt: str, completion_a: str, completion_b: str) -> PreferenceChoice:
        self.print_fn(f"\nPrompt:\n{prompt}\n\n[A]\n{completion_a}\n\n[B]\n{completion_b}\n")
        while True:
            answer = self.input_fn("Which is better? a / b / t(ie): ").strip()
            if answer.lower() in _CHOICES:
                return _CHOICES[answer.lower()]
            self.print_fn(f"Expected 'a', 'b' or 'tie', got {answer!r}; try again.")

    def compare(self, prompt: str, completion_a: str, completion_b: str) -> PreferenceChoice:
        """Ask which completion is better, log the answer, and return ``"a"``, ``"b"`` or ``"tie"``."""
        if self.callback is not None:
            answer = self.callback(prompt, completion_a, completion_b)
            if answer not in ("a", "b", "tie"):
                raise ValueError(f"Expected the callback to return 'a', 'b' or 'tie', got {answer!r}")
            choice: PreferenceChoice = answer  # type: ignore[assignment]  # checked just above
        else:
            choice = self._ask_terminal(prompt, completion_a, completion_b)
        if self.log_path is not None:
            record = {
                "prompt": prompt,
                "completion_a": completion_a,
                "completion_b": completion_b,
                "preference": choice,
                "timestamp": _timestamp(),
            }
            append_jsonl(self.log_path, record)
        return choice


def load_preferences(path: PathLike) -> list[Preference]:
    """The judgements of a `PairwisePreference` log, in the order they were given (rating records in the same log,
    as the feedback web page writes them, are skipped)."""
    records, cut = read_records(path)
    warn_cut_lines(path, cut)
    preferences = []
    for where, record in records:
        if "preference" not in record and "completion" in record and "reward" in record:
            continue
        _require_keys(record, ("prompt", "completion_a", "completion_b", "preference"), where)
        if record["preference"] not in ("a", "b", "tie"):
            raise ValueError(f"Expected preference 'a', 'b' or 'tie' in {where}, got {record['preference']!r:.80}")
        texts = [record[key] for key in ("prompt", "completion_a", "completion_b")]
        if not all(isinstance(text, str) for text in texts):
            raise ValueError(f"Expected prompt, completion_a and completion_b to be strings in {where}")
        preferences.append(
            Preference(
                prompt=record["prompt"],
                completion_a=record["completion_a"],
                completion_b=record["completion_b"],
                preference=record["preference"],
                timestamp=str(record.get("timestamp", "")),
            )
        )
    return preferences
