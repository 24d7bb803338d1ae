"""A reward-model folder's ``reward_model.json`` is checked before the model loads: a spread that is zero, negative
or NaN (it divides every score), a non-finite mean or a bad max_length is an error naming the file and the field."""

from __future__ import annotations

import json

import pytest

from textgen_env.rewards import RewardModelReward
from textgen_env.rewards.reward_model import FORMAT, check_metadata


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"score_std": 0}, r"Expected score_std in .*reward_model\.json' to be a finite number > 0, got 0"),
        ({"score_std": -1.5}, r"Expected score_std in .* to be a finite number > 0, got -1\.5"),
        ({"score_std": float("nan")}, r"Expected score_std in .* to be a finite number > 0, got nan"),
        ({"score_std": "1"}, r"Expected score_std in .* to be a finite number > 0, got '1'"),
        ({"score_mean": float("inf")}, r"Expected score_mean in .* to be a finite number, got inf"),
        ({"score_mean": True}, r"Expected score_mean in .* to be a finite number, got True"),
        ({"max_length": 0}, r"Expected max_length in .* to be a positive int, got 0"),
        ({"max_length": 12.5}, r"Expected max_length in .* to be a positive int, got 12\.5"),
    ],
    ids=["std-zero", "std-negative", "std-nan", "std-string", "mean-inf", "mean-bool", "length-zero", "length-float"],
)
def test_a_corrupt_reward_model_json_names_the_file_and_the_field(tmp_path, fields, message):
    folder = tmp_path / "rm"
    folder.mkdir()
    meta = {"format": FORMAT, "score_mean": 0.1, "score_std": 2.0, "max_length": 64, **fields}
    (folder / "reward_model.json").write_text(json.dumps(meta))  # json writes NaN and Infinity unless told not to
    with pytest.raises(ValueError, match=message + r" \(retrain it with `textgen-env reward-model train`\)"):
        RewardModelReward(folder)


def test_sound_metadata_passes_and_missing_fields_take_their_defaults():
    meta = {"format": FORMAT, "score_mean": -0.5, "score_std": 1e-3, "max_length": 8}
    assert check_metadata(meta, "here") is meta
    assert check_metadata({"format": FORMAT}, "here") == {"format": FORMAT}


def test_a_nesting_bomb_in_reward_model_json_is_a_clear_error(tmp_path):
    folder = tmp_path / "rm"
    folder.mkdir()
    (folder / "reward_model.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match=r"Expected a reward-model folder with a reward_model\.json written by"):
        RewardModelReward(folder)
