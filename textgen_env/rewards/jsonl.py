"""JSONL logs of feedback that a crash may cut short: one record written per line (fsynced, finite numbers only),
every line read back with its number.

The one tolerance of the readers: a line that starts with ``{`` and does not parse is a record a crash cut short
(wherever it is in the file, whatever it ends with); it is skipped with a warning that names the file and the
line. Anything else that is not a record is an error naming the line: text that is not JSON, JSON that is not an
object, ``NaN`` or ``Infinity`` (never written by `append_jsonl`), and nesting too deep to read.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

from textgen_env.storage import append_line

__all__ = ["append_jsonl", "parse_record", "read_jsonl", "read_records", "warn_cut_lines"]

PathLike = str | os.PathLike


def append_jsonl(path: PathLike, record: dict[str, Any]) -> None:
    """Append one JSON record as a line and force it to disk before returning (`textgen_env.storage.append_line`:
    one write under a lock, so records from several processes never interleave; a line cut short by a crash is
    ended first, so the new record stands on its own line).

    Raises:
        ValueError: the record holds NaN or Infinity, or text that does not encode to UTF-8 (a lone surrogate);
            nothing is written.
    """
    try:
        line = json.dumps(record, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise ValueError(
            f"Expected a record of finite numbers for {os.fspath(path)!r}, got one with NaN or Infinity: "
            f"{json.dumps(record, ensure_ascii=True)[:200]}"
        ) from None
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"Expected a record of text that encodes to UTF-8 for {os.fspath(path)!r}, got a lone surrogate "
            f"{error.object[error.start : error.end]!r} at character {error.start} of its JSON"
        ) from None
    append_line(path, line)


class _NonFinite(ValueError):
    """A NaN or an infinity where a log line must hold a finite number."""


def _refuse_constant(name: str) -> float:
    raise _NonFinite(name)


def parse_record(line: str, where: str) -> dict[str, Any] | None:
    """The JSON object on one log line; ``None`` for a record a crash cut short (see the module docstring).

    Args:
        line: the line's text.
        where: the line for messages, such as ``"line 3 of 'log.jsonl'"``.

    Raises:
        ValueError: the line is not a record; the message names `where`.
    """
    text = line.strip()
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(f"Expected a JSON record on {where}, got one nested too deeply to read") from None
    except json.JSONDecodeError as error:
        if text.startswith("{"):
            return None
        raise ValueError(f"Expected a JSON record on {where}, got {text[:80]!r} ({error.msg})") from None
    except _NonFinite as error:
        raise ValueError(f"Expected a JSON record of finite numbers on {where}, got {error}") from None
    except ValueError as error:  # an integer longer than Python converts (sys.get_int_max_str_digits)
        raise ValueError(f"Expected a JSON record on {where}, got one Python cannot read ({error})") from None
    if not isinstance(value, dict):
        raise ValueError(f"Expected a JSON object on {where}, got {type(value).__name__} {text[:80]!r}")
    return value


def read_records(path: PathLike) -> tuple[list[tuple[str, dict[str, Any]]], list[int]]:
    """``([(where, record), ...], cut_lines)``: every record of the log at `path` with its place for messages, and
    the numbers (1-based) of the lines a crash cut short. Blank lines are ignored.

    Raises:
        ValueError: a line is not a record (see `parse_record`).
    """
    records, cut = [], []
    with open(path, encoding="utf-8", errors="replace") as file:  # a cut multi-byte character spoils one line only
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            where = f"line {number} of {os.fspath(path)!r}"
            record = parse_record(line, where)
            if record is None:
                cut.append(number)
            else:
                records.append((where, record))
    return records, cut


def warn_cut_lines(path: PathLike, lines: list[int], stacklevel: int = 3) -> None:
    """Warn that `lines` of `path` were skipped as records cut short (nothing when there are none)."""
    if lines:
        warnings.warn(
            f"Skipped lines {lines} of {os.fspath(path)!r}: records cut short (by a crash?)", stacklevel=stacklevel
        )


def read_jsonl(path: PathLike) -> list[dict[str, Any]]:
    """The records of a JSONL log; lines a crash cut short are skipped with a warning that names them.

    Raises:
        ValueError: a line is not a record (see `parse_record`).
    """
    records, cut = read_records(path)
    warn_cut_lines(path, cut)
    return [record for _, record in records]
