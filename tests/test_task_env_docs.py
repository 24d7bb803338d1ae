"""docs/tasks_env.md: every python block runs on its own, in a fresh namespace (offline, on the tiny model)."""

from __future__ import annotations

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "tasks_env.md"


def test_the_task_env_page_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert len(blocks) == 2
    for block in blocks:  # our own page, run as tests/test_readme.py runs the README
        exec(compile(block, str(PAGE), "exec"), {"__name__": "__docs__"})
    printed = capsys.readouterr().out
    assert "1.0 {'correct': 1.0, 'format': 0.0} 1.0" in printed
    assert "That is not right. Try again. [0.0]" in printed and "(done) [0.0, 1.0]" in printed
