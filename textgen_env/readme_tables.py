"""The env argument tables the docs pages show, taken from the registered env classes' docstrings.

Each env class's docstring holds an Arguments table generated at import from its config's field docstrings
(`textgen_env.config_docs.document_arguments`); `env_argument_tables` returns those tables by gym id. The docs
pages (``docs/envs/*.md``) show them in blocks that ``python docs/generate.py --write`` fills and ``--check`` (and
the docs build) keeps equal to them.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from textgen_env.config_docs import documented_table

__all__ = ["DOCUMENTED_ENVS", "env_argument_tables"]

DOCUMENTED_ENVS = ("TextGen-v0", "TextDialogue-v0", "TextEdit-v0", "TextCompletion-v0")
"""The registered envs whose argument tables the docs show."""


def env_argument_tables(env_ids: Sequence[str] = DOCUMENTED_ENVS) -> dict[str, str]:
    """Env id -> the argument table of the class it is registered with (the table in that class's docstring)."""
    tables: dict[str, str] = {}  # the package's import (this module is in it) registered the envs
    for env_id in env_ids:
        entry_point = gym.spec(env_id).entry_point
        creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
        if not isinstance(creator, type):
            raise TypeError(f"Expected {env_id} to be registered with an env class, got {creator!r}")
        tables[env_id] = documented_table(creator)
    return tables
