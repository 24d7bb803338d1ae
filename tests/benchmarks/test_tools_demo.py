"""The tool demonstration benchmark runs end to end on the tiny tool model (``--smoke``): five rows scored on the
same held-out items, tool use where the env has the calculator, gains paired with the row each run started from."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import tools_demo

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Prompt of")]


def test_tools_demo_smoke(tmp_path):
    output = tmp_path / "tools_demo.json"
    tools_demo.main(["--smoke", "--output", str(output)])
    data = json.loads(output.read_text())
    names = [row["row"] for row in data["rows"]]
    assert names == [
        "untrained, no tools",
        "untrained, calculator",
        "warmed up, calculator",
        "after RL, calculator",
        "after RL, no tools",
    ]
    for row in data["rows"]:
        assert row["items"] == 3 and row["samples_per_item"] == 2
        assert ("tool_use" in row) == ("calculator" in row["row"])
    assert "gain" not in data["rows"][0] and "tool_use" in data["rows"][3]["gain"]
    assert data["runs"]["tools"]["warmup"]["demonstrations"] == 8 and "warmup" not in data["runs"]["plain"]
    assert set(data["evaluations"]) == set(names) and "gain_over_untrained" in data["rows"][3]
    tools_demo.main(["--smoke", "--add-seed", "1", "--output", str(output)])
    added = json.loads(output.read_text())
    assert added["rows"] == data["rows"] and [extra["seed"] for extra in added["more_seeds"]] == [1]
    assert [row["row"] for row in added["more_seeds"][0]["rows"]] == names[2:4]
    assert "gain_over_untrained" in added["more_seeds"][0]["rows"][1]
    with pytest.raises(SystemExit, match="a new seed"):
        tools_demo.main(["--smoke", "--add-seed", "1", "--output", str(output)])
