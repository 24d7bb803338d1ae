"""`agents.app.run_logging.RunLogger`: ``progress.csv`` stays a readable CSV whatever moment a kill chose."""

from __future__ import annotations

import csv

import pytest

from agents.app.run_logging import RunLogger


def _rows(folder):
    with (folder / "progress.csv").open(encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


@pytest.mark.parametrize("left_behind", [None, ""], ids=["no-file", "empty-file-of-a-killed-run"])
def test_every_row_is_read_back_under_the_header(tmp_path, left_behind):
    if left_behind is not None:
        (tmp_path / "progress.csv").write_text(left_behind)
    logger = RunLogger(tmp_path, total_timesteps=10, tensorboard=False)
    logger.log({"iteration": 1, "timesteps": 5, "rollout/reward_mean": 0.5})
    logger.close()
    logger = RunLogger(tmp_path, total_timesteps=10, start_timesteps=5, tensorboard=False)  # resumed: no 2nd header
    logger.log({"iteration": 2, "timesteps": 10})
    logger.close()
    rows = _rows(tmp_path)
    assert [row["iteration"] for row in rows] == ["1", "2"] and rows[0]["rollout/reward_mean"] == "0.5"


def test_the_header_is_on_disk_before_the_first_iteration(tmp_path):
    logger = RunLogger(tmp_path, total_timesteps=10, tensorboard=False)
    try:  # a process killed now leaves this file: the header, no rows
        assert (tmp_path / "progress.csv").read_text(encoding="utf-8").startswith("iteration,timesteps,")
    finally:
        logger.close()
