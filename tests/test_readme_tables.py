"""The README's env argument tables equal the generated ones; the check and write command."""

from __future__ import annotations

from pathlib import Path

import pytest

from textgen_env.readme_tables import (
    README_ENVS,
    REGENERATE,
    env_argument_tables,
    fill_readme,
    main,
    readme_block,
    readme_markers,
    stale_readme_tables,
)

README = Path(__file__).resolve().parents[1] / "README.md"
TABLES = {"A-v0": "| x |\n|---|\n| 1 |", "B-v0": "| y |\n|---|\n| 2 |"}


def _markdown(*envs: str, body: str = "| old |") -> str:
    blocks = ["\n".join((readme_markers(env)[0], body, readme_markers(env)[1])) for env in envs]
    return "# Title\n\nText.\n\n" + "\n\nMore text.\n\n".join(blocks) + "\n\nEnd.\n"


def test_the_readme_tables_are_the_generated_ones():
    problems = stale_readme_tables(README.read_text(encoding="utf-8"), env_argument_tables())
    assert not problems, f"{problems}; regenerate with: {REGENERATE}"


def test_env_argument_tables_come_from_the_registered_env_classes():
    from textgen_env import TextGenEnv
    from textgen_env.config_docs import documented_table

    tables = env_argument_tables()
    assert tuple(tables) == README_ENVS
    assert tables["TextGen-v0"] == documented_table(TextGenEnv)


def test_fill_readme_writes_each_block_and_keeps_the_rest():
    filled = fill_readme(_markdown("A-v0", "B-v0"), TABLES)
    assert readme_block("A-v0", TABLES["A-v0"]) in filled and readme_block("B-v0", TABLES["B-v0"]) in filled
    assert "| old |" not in filled and filled.startswith("# Title\n\nText.\n\n") and filled.endswith("\n\nEnd.\n")
    assert fill_readme(filled, TABLES) == filled
    assert stale_readme_tables(filled, TABLES) == []


@pytest.mark.parametrize(
    ("markdown", "problem"),
    [
        (_markdown("A-v0", "B-v0"), "A-v0: the table differs from the config's field docstrings"),
        (_markdown("A-v0"), "B-v0: no generated arguments block"),
        (_markdown("A-v0", "B-v0", "C-v0"), "C-v0: no such env among ['A-v0', 'B-v0']"),
        (_markdown("A-v0", "A-v0", "B-v0"), "A-v0: 2 generated arguments blocks"),
    ],
    ids=["changed", "missing", "unknown", "twice"],
)
def test_stale_readme_tables_names_each_problem(markdown, problem):
    assert problem in stale_readme_tables(markdown, TABLES)


def test_main_checks_and_writes(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("textgen_env.readme_tables.env_argument_tables", lambda: TABLES)
    path = tmp_path / "README.md"
    path.write_text(_markdown("A-v0", "B-v0"), encoding="utf-8")
    assert main(["--check", str(path)]) == 1
    assert f"Regenerate with: {REGENERATE}" in capsys.readouterr().err
    assert main(["--write", str(path)]) == 0
    assert main(["--check", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == fill_readme(_markdown("A-v0", "B-v0"), TABLES)
    path.write_text(_markdown("A-v0"), encoding="utf-8")
    assert main(["--write", str(path)]) == 1  # a missing block cannot be written: the message says what to add
    assert readme_markers("ENV-ID")[0] in capsys.readouterr().err
    assert main(["--fix"]) == 2 and "usage:" in capsys.readouterr().err
