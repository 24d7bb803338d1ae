"""docs/tools.md: its Python blocks run, in order, in one namespace (offline, tiny models)."""

from __future__ import annotations

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "tools.md"


def test_the_tools_page_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), namespace)  # our own documentation, not untrusted input
    printed = capsys.readouterr().out
    assert "<tool_result>408</tool_result>" in printed and "212.0 F" in printed and "[Japan]" in printed
