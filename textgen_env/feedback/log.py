"""The feedback log: one JSONL file of pairwise preferences and 1-5 ratings, appended one fsynced line per answer.

The records are those of `PairwisePreference` (``prompt``, ``completion_a``, ``completion_b``, ``preference``,
``timestamp``) and of the ``human`` reward (``prompt``, ``completion``, ``rating``, ``reward``, ``scale``,
``timestamp``); the web app may add keys of its own (``question_id``, ``source``), which readers ignore. A person,
the web app and a training job can all write the same log: `append_record` writes one line under a lock
(`textgen_env.storage.append_line`).

`read_feedback` is the strict reader a reward model trains from: a line that is not a record, or a record with a
bad field (a non-finite number included), is an error that names the line; only a line cut short by a crash (it
starts with ``{`` and does not parse, see `textgen_env.rewards.jsonl`) is skipped, with a warning. `open_log` opens
the log once before anything else, so a server whose log cannot be written fails at start, not at the first answer.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from textgen_env.rewards.human import Preference
from textgen_env.rewards.jsonl import append_jsonl, read_records, warn_cut_lines
from textgen_env.storage import open_regular_file

__all__ = [
    "FeedbackLog",
    "Rating",
    "append_record",
    "open_log",
    "preference_record",
    "rating_record",
    "read_feedback",
]

PathLike = str | os.PathLike


@dataclass(frozen=True)
class Rating:
    """One rating of a completion on a numeric scale (1-5 by default)."""

    prompt: str
    completion: str
    rating: float
    """The rating given, within `scale`."""
    scale: tuple[float, float] = (1.0, 5.0)
    """The lowest and the highest rating."""
    timestamp: str = ""


@dataclass(frozen=True)
class FeedbackLog:
    """The answers of a feedback log, in the order they were given."""

    preferences: tuple[Preference, ...]
    """Pairwise judgements (ties included)."""
    ratings: tuple[Rating, ...]
    """Ratings of single completions."""
    skipped_lines: tuple[int, ...] = ()
    """Line numbers (1-based) of records cut short by a crash, skipped with a warning."""

    def __len__(self) -> int:
        return len(self.preferences) + len(self.ratings)


def _timestamp() -> str:
    return datetime.now(timezone.utc).isoformat()


def preference_record(prompt: str, completion_a: str, completion_b: str, preference: str, **extra: Any) -> dict:
    """A `PairwisePreference` log record (``preference`` is ``"a"``, ``"b"`` or ``"tie"``), with `extra` keys."""
    if preference not in ("a", "b", "tie"):
        raise ValueError(f"Expected preference 'a', 'b' or 'tie', got {preference!r:.80}")
    record = {"prompt": prompt, "completion_a": completion_a, "completion_b": completion_b, "preference": preference}
    return {**record, "timestamp": _timestamp(), **extra}


def rating_record(prompt: str, completion: str, rating: float, scale: tuple[float, float], **extra: Any) -> dict:
    """A ``human`` reward log record: the rating, its reward (the scale mapped onto [-1, 1]) and the scale."""
    low, high = scale
    if not low <= rating <= high:
        raise ValueError(f"Expected a rating from {low:g} to {high:g}, got {rating!r:.80}")
    reward = -1.0 + 2.0 * (rating - low) / (high - low)
    record = {"prompt": prompt, "completion": completion, "rating": float(rating), "reward": reward}
    return {**record, "scale": [float(low), float(high)], "timestamp": _timestamp(), **extra}


def append_record(path: PathLike, record: dict[str, Any]) -> None:
    """Append `record` to the log at `path` as one JSON line, on disk before this returns (ValueError, and nothing
    written, for NaN, Infinity or text that does not encode to UTF-8)."""
    append_jsonl(path, record)


def open_log(path: PathLike) -> Path:
    """Open (creating it and its folder if needed) the log at `path` for appending, as `append_record` will, and
    close it again: a log that cannot be written fails here, naming the path and the reason, rather than at the
    first answer.

    Raises:
        OSError: the folder cannot be made, or the file cannot be opened for appending (a folder, a symbolic link,
            no permission...).
    """
    path = Path(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    try:
        try:
            handle = open_regular_file(path, flags, "the feedback log")
        except FileNotFoundError:  # a folder to make first
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open_regular_file(path, flags, "the feedback log")
        os.close(handle)
    except OSError as error:
        if (error.strerror or "").startswith("Expected"):  # open_regular_file's own refusal says it all
            raise
        message = f"Expected a feedback log that can be appended to, got {os.fspath(path)!r}: {error.strerror or error}"
        raise type(error)(message) from None
    return path


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _parse_preference(record: dict, where: str) -> Preference:
    for key in ("prompt", "completion_a", "completion_b"):
        if not _is_text(record[key]):
            raise ValueError(f"Expected {key} to be a string in {where}, got {record[key]!r:.80}")
    if record["preference"] not in ("a", "b", "tie"):
        raise ValueError(f"Expected preference 'a', 'b' or 'tie' in {where}, got {record['preference']!r:.80}")
    return Preference(
        prompt=record["prompt"],
        completion_a=record["completion_a"],
        completion_b=record["completion_b"],
        preference=record["preference"],
        timestamp=str(record.get("timestamp", "")),
    )


def _parse_rating(record: dict, where: str) -> Rating:
    for key in ("prompt", "completion"):
        if not _is_text(record[key]):
            raise ValueError(f"Expected {key} to be a string in {where}, got {record[key]!r:.80}")
    scale = record.get("scale", [1, 5])
    if not (isinstance(scale, list) and len(scale) == 2 and all(map(_is_number, scale)) and scale[0] < scale[1]):
        raise ValueError(f"Expected scale to be [low, high] with low < high in {where}, got {scale!r:.80}")
    rating = record["rating"]
    if not _is_number(rating) or not scale[0] <= rating <= scale[1]:
        low, high = scale
        raise ValueError(f"Expected rating to be a number from {low:g} to {high:g} in {where}, got {rating!r:.80}")
    return Rating(
        record["prompt"],
        record["completion"],
        float(rating),
        (float(scale[0]), float(scale[1])),
        str(record.get("timestamp", "")),
    )


def read_feedback(path: PathLike) -> FeedbackLog:
    """Read a feedback log strictly (see the module docstring).

    Raises:
        FileNotFoundError: `path` is not a file.
        ValueError: the log holds no answers, or a line that is neither a preference nor a rating record (the
            message names the file and the line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Expected a feedback log (JSONL) at {os.fspath(path)!r}, got no such file")
    preferences: list[Preference] = []
    ratings: list[Rating] = []
    records, skipped = read_records(path)
    for where, record in records:
        if {"completion_a", "completion_b", "preference", "prompt"} <= record.keys():
            preferences.append(_parse_preference(record, where))
        elif {"completion", "rating", "prompt"} <= record.keys():
            ratings.append(_parse_rating(record, where))
        else:
            raise ValueError(
                f"Expected a preference (prompt, completion_a, completion_b, preference) or a rating (prompt, "
                f"completion, rating) record on {where}, got keys {sorted(record)[:10]}"
            )
    warn_cut_lines(path, skipped)
    if not preferences and not ratings:
        raise ValueError(f"Expected preference or rating records in {os.fspath(path)!r}, got an empty log")
    return FeedbackLog(tuple(preferences), tuple(ratings), tuple(skipped))
