"""The TRL side-by-side benchmarks run end to end on the tiny model (``--smoke``): both frameworks train to the same
token budget, every run is scored by the shared evaluator, seeds are summarised, and ``--resume`` skips done runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import vs_trl
import vs_trl_task

pytestmark = pytest.mark.slow


def test_vs_trl_smoke_trains_both_to_the_budget_and_resumes(tmp_path, capsys):
    output = tmp_path / "vs_trl.json"
    argv = ["--smoke", "--seeds", "0", "1", "--lrs-ours", "1e-3", "--lrs-trl", "1e-3", "--output", str(output)]
    argv += ["--ablations", "k3@1e-3"]
    vs_trl.main(argv)
    data = json.loads(output.read_text())
    keys = {(row["variant"], row["seed"]) for row in data["rows"]}
    assert keys == {(v, s) for v in ("ours", "trl", "ours-k3") for s in (0, 1)}
    for row in data["rows"]:
        assert row["train_tokens"] >= 64  # each stops at the end of the rollout that passes the budget
        assert row["reward_before"] == data["rows"][0]["reward_before"]  # one shared evaluation before
    assert {point["seeds"] for point in data["summary"]} == {2}
    capsys.readouterr()
    vs_trl.main([*argv, "--resume"])  # nothing left to run: no training line printed
    assert " tokens, gain " not in capsys.readouterr().out
    with pytest.raises(SystemExit, match="same beta"):
        vs_trl.main([*argv, "--resume", "--beta", "0.5"])


def test_vs_trl_task_smoke_scores_both_on_the_held_out_items(tmp_path):
    output = tmp_path / "vs_trl_task.json"
    vs_trl_task.main(["--smoke", "--seeds", "0", "--output", str(output)])
    data = json.loads(output.read_text())
    assert [row["variant"] for row in data["rows"]] == ["ours", "trl"]
    for row in data["rows"]:
        assert row["train_tokens"] >= 64 and row["items"] == 4 and row["samples_per_item"] == 2
        assert 0.0 <= row["accuracy_after"] <= 1.0
