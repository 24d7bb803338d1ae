"""docs/tasks.md: every python block runs on its own, in a fresh namespace (offline)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from textgen_env.tasks import registry

PAGE = Path(__file__).resolve().parents[2] / "docs" / "tasks.md"


def test_the_tasks_page_runs(monkeypatch, capsys):
    pytest.importorskip("reasoning_gym")
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))  # the page registers "echo"
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert len(blocks) >= 8
    for block in blocks:  # our own page, run as tests/test_readme.py runs the README
        exec(compile(block, str(PAGE), "exec"), {"__name__": "__docs__"})
    printed = capsys.readouterr().out
    assert "True True" in printed and "'difficulty': 2" in printed
