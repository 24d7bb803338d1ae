"""Named runs: a TOML file of ``textgen-env train`` settings (``train --config FILE``), checked against the flags.

A run file holds one ``key = value`` per setting, the keys being the names of ``train``'s flags with underscores
(the `TrainSettings` fields and the agent options, the same `OptionField` list the parser is built from)::

    # configs/dialogue.toml
    env = "dialogue"
    user = "simulated"
    learning_rate = 3e-5

Flags given on the command line override the file's values; the file's values override the defaults. An unknown
key, a value of the wrong type or a file that is not TOML is refused with the file and the key named. TOML has no
null: ``"none"`` sets an optional setting to None, as ``--kl-target none`` does.
"""

from __future__ import annotations

import difflib
import sys
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agents.app.options import OptionField

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (tomli is a dependency there)
    import tomli as tomllib

__all__ = ["load_run_config", "run_config_value"]


def run_config_value(option: OptionField, value: Any, where: str) -> Any:
    """`value` of `option` as read from a TOML file, checked against the option's type (`where` names the key)."""
    if option.optional and isinstance(value, str) and value.strip().lower() == "none":
        return None
    kind = option.kind
    if typing.get_origin(kind) is typing.Literal:
        choices = typing.get_args(kind)
        if value not in choices:
            raise ValueError(f"Expected {where} to be one of {list(choices)}, got {value!r}")
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is bool and not isinstance(value, bool):
        raise ValueError(f"Expected {where} to be true or false, got {value!r}")
    if kind is int and isinstance(value, bool):
        raise ValueError(f"Expected {where} to be an integer, got {value!r}")
    if not isinstance(value, kind):
        none = ' (or "none")' if option.optional else ""
        raise ValueError(f"Expected {where} to be a TOML {kind.__name__}{none}, got {value!r}")
    return value


def load_run_config(path: str | Path, options: Iterable[OptionField]) -> dict[str, Any]:
    """Setting name -> value of the run file at `path`, each key one of `options` and each value of its type."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            data = tomllib.load(stream)
    except FileNotFoundError:
        raise ValueError(f"Expected a run config file, got {str(path)!r}, which does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"Expected a TOML run config in {path}, got a file TOML cannot read: {error}") from None
    by_name = {option.name: option for option in options}
    values = {}
    for key, value in data.items():
        if key not in by_name:
            close = difflib.get_close_matches(key, list(by_name), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; the settings are {sorted(by_name)}"
            raise ValueError(f"Expected the keys of {path} to be textgen-env train settings, got {key!r}{hint}")
        values[key] = run_config_value(by_name[key], value, f"{key} in {path}")
    return values
