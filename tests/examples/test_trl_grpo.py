"""examples/trl_grpo.py: the help runs, and two GRPOTrainer steps on the tiny model log our reward terms."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trl_grpo.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    pytest.importorskip("trl")
    spec = importlib.util.spec_from_file_location("trl_grpo", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_names_the_reward_flags(example, capsys):
    with pytest.raises(SystemExit) as exit_info:
        example.main(["--help"])
    assert exit_info.value.code == 0 and "--split-rewards" in capsys.readouterr().out


@pytest.mark.slow
def test_two_steps_on_the_tiny_model_log_each_reward_term(example, capsys):
    mix = '{"keyword": 1.0, "length": 0.1}'
    argv = ["--model", "tiny", "--reward", mix, "--reward-kwargs", '{"keyword": {"keywords": ["great"]}}']
    history = example.main([*argv, "--split-rewards", "--max-steps", "2", "--batch-size", "4", "--prompts", "stories"])
    assert len(history) == 2 and all(math.isfinite(entry["reward"]) for entry in history)
    assert {"rewards/keyword/mean", "rewards/length/mean"} <= set(history[0])
    assert "step 2: reward" in capsys.readouterr().out


@pytest.mark.slow
def test_two_steps_on_a_task_log_its_correct_and_format_parts(example, capsys):
    argv = ["--model", "tiny", "--task", "arithmetic", "--task-items", "8", "--max-steps", "2", "--batch-size", "4"]
    history = example.main(argv)
    assert len(history) == 2 and all(math.isfinite(entry["reward"]) for entry in history)
    assert any(key.startswith("rewards/") and "correct" in key for key in history[0]), sorted(history[0])
