"""The README's env argument tables, kept equal to the ones generated from the configs' field docstrings.

Each table sits between two markers that the write command fills in::

    <!-- TextGen-v0 arguments: generated from the config's field docstrings by ... -->
    (the table)
    <!-- end of generated arguments -->

``python -m textgen_env.readme_tables --check README.md`` fails when a table differs from the one in its env's
docstring (`textgen_env.config_docs.document_arguments`), and ``--write README.md`` rewrites them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from textgen_env.config_docs import documented_table

__all__ = [
    "README_ENVS",
    "env_argument_tables",
    "fill_readme",
    "main",
    "readme_block",
    "readme_markers",
    "stale_readme_tables",
]

README_ENVS = ("TextGen-v0", "TextDialogue-v0", "TextEdit-v0")
"""The registered envs whose argument tables the README shows."""
REGENERATE = "python -m textgen_env.readme_tables --write README.md"
_END = "<!-- end of generated arguments -->"
_BLOCK = re.compile(
    r"^<!-- (?P<env>\S+) arguments: generated [^\n]*-->\n.*?^<!-- end of generated arguments -->$",
    re.MULTILINE | re.DOTALL,
)


def env_argument_tables(env_ids: Sequence[str] = README_ENVS) -> dict[str, str]:
    """Env id -> the argument table of the class it is registered with (the table in that class's docstring)."""
    tables: dict[str, str] = {}  # the package's import (this module is in it) registered the envs
    for env_id in env_ids:
        entry_point = gym.spec(env_id).entry_point
        creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
        if not isinstance(creator, type):
            raise TypeError(f"Expected {env_id} to be registered with an env class, got {creator!r}")
        tables[env_id] = documented_table(creator)
    return tables


def readme_markers(env_id: str) -> tuple[str, str]:
    """The lines that open and close `env_id`'s generated table in the README."""
    return f"<!-- {env_id} arguments: generated from the config's field docstrings by {REGENERATE} -->", _END


def readme_block(env_id: str, table: str) -> str:
    """`env_id`'s generated block as the README holds it: start marker, table, end marker."""
    start, end = readme_markers(env_id)
    return f"{start}\n\n{table}\n\n{end}"


def fill_readme(markdown: str, tables: dict[str, str]) -> str:
    """`markdown` with every generated-arguments block rewritten from `tables` (blocks of other envs left alone)."""

    def fill(match: re.Match[str]) -> str:
        env = match.group("env")
        return readme_block(env, tables[env]) if env in tables else match.group(0)

    return _BLOCK.sub(fill, markdown)


def stale_readme_tables(markdown: str, tables: dict[str, str]) -> list[str]:
    """What differs between the README's generated blocks and `tables` (an empty list when all match)."""
    found = [m.group("env") for m in _BLOCK.finditer(markdown)]
    problems = [f"{env}: no generated arguments block" for env in tables if env not in found]
    problems += [f"{env}: no such env among {sorted(tables)}" for env in found if env not in tables]
    problems += [f"{env}: {found.count(env)} generated arguments blocks" for env in tables if found.count(env) > 1]
    for match in _BLOCK.finditer(markdown):
        env = match.group("env")
        if env in tables and match.group(0) != readme_block(env, tables[env]):
            problems.append(f"{env}: the table differs from the config's field docstrings")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m textgen_env.readme_tables --check|--write [README.md]``: check or rewrite the README's env tables."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not 1 <= len(args) <= 2 or args[0] not in ("--check", "--write"):
        print("usage: python -m textgen_env.readme_tables --check|--write [README.md]", file=sys.stderr)
        return 2
    path = Path(args[1] if len(args) == 2 else "README.md")
    markdown = path.read_text(encoding="utf-8")
    tables = env_argument_tables()
    if args[0] == "--write":
        filled = fill_readme(markdown, tables)
        if filled != markdown:
            path.write_text(filled, encoding="utf-8")
        print(f"{path}: {'updated' if filled != markdown else 'already up to date'}")
        markdown = filled
    problems = stale_readme_tables(markdown, tables)
    for problem in problems:
        print(f"{path}: {problem}", file=sys.stderr)
    if problems:
        start, end = readme_markers("ENV-ID")
        print(f"Regenerate with: {REGENERATE}; for a missing block, first add the lines", file=sys.stderr)
        print(f"{start}\n{end}\nwhere the table goes, with the env's id for ENV-ID", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
