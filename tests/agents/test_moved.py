"""The 0.1 module paths the docs named still import, as the new modules themselves, with a DeprecationWarning."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

MOVED = {
    "agents.cli": "agents.app.cli",
    "agents.training": "agents.app.training",
    "agents.dialogue_eval": "agents.evaluation.dialogue",
    "agents.sb3_edit": "agents.sb3.edit",
    "agents.edit_lm": "agents.edit",
}


@pytest.mark.parametrize(("old", "new"), MOVED.items(), ids=list(MOVED))
def test_an_old_path_is_the_new_module_and_warns(old, new):
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert any(f"{old} moved to {new}" in m for m in messages), messages


def test_python_m_agents_cli_still_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "agents.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage: textgen-env" in result.stdout and "DeprecationWarning" not in result.stderr
