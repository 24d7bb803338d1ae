"""Bradley-Terry reward models on the tiny trunk: comparisons, the split, training, the saved folder, the
``reward-model`` reward, the CLI, and the bad-input errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from agents.app.cli import main
from agents.reward_model import (
    Comparison,
    RewardModelConfig,
    clustered_se,
    comparisons_from_feedback,
    split_by_prompt,
    train_reward_model,
)
from textgen_env.feedback import append_record, preference_record, rating_record, read_feedback
from textgen_env.rewards import RewardModelReward, make_reward


def test_comparisons_from_preferences_and_ratings(tmp_path):
    log = tmp_path / "log.jsonl"
    append_record(log, preference_record("p", "x", "y", "b"))
    append_record(log, preference_record("p", "x", "y", "tie"))  # no comparison
    for completion, rating in (("one", 1), ("four", 4), ("five", 5), ("five", 2), ("two", 2)):
        append_record(log, rating_record("q", completion, rating, (1, 5)))  # the later rating of "five" counts
    comparisons = comparisons_from_feedback(read_feedback(log), margin_scale=0.5)
    assert comparisons[0] == Comparison("p", "y", "x", 0.0)
    expected = {
        ("four", "one", 1.5),
        ("five", "one", 0.5),
        ("two", "one", 0.5),
        ("four", "five", 1.0),
        ("four", "two", 1.0),
    }
    assert {(c.chosen, c.rejected, c.margin) for c in comparisons[1:]} == expected


def test_split_holds_out_whole_prompts():
    comparisons = [Comparison(f"p{i % 5}", "a", "b") for i in range(20)]
    train, held_out = split_by_prompt(comparisons, 0.2, seed=0)
    assert len(held_out) == 4 and not {c.prompt for c in train} & {c.prompt for c in held_out}


def test_training_learns_the_preference_and_saves_a_reward_model(tiny_reward_model):
    folder, report = tiny_reward_model
    assert report["comparisons"] == 60 + 5 and report["eval_comparisons"] > 0
    assert (
        report["eval_accuracy"] >= 0.8 and report["history"][-1]["eval"]["loss"] < report["history"][0]["eval"]["loss"]
    )
    assert (folder / "config.json").is_file() and (folder / ".complete").is_file()
    saved = json.loads((folder / "reward_model.json").read_text())
    assert saved["format"] == "textgen-env reward model" and saved["eval_accuracy"] == report["eval_accuracy"]


def test_reward_model_reward_scores_batches(tiny_reward_model):
    folder, _ = tiny_reward_model
    reward = make_reward("reward-model", {"path": str(folder), "batch_size": 3})
    completions = ["it was great", "it was awful", "very good and fun", "boring and dull", "the best", "the worst"]
    scores = reward(["the film was"] * 6, completions, [True] * 6)
    assert scores.shape == (6,) and np.isfinite(scores).all()
    assert (scores[0::2] > scores[1::2]).all()
    raw = RewardModelReward(folder, normalize=False).scores(["the film was"] * 6, completions)
    assert np.allclose((raw - reward.shift) / reward.scale, scores)


def test_lora_training_saves_a_plain_model(tmp_path, tiny_model_dir, preference_log):
    log = preference_log(tmp_path / "log.jsonl", n=20)
    config = RewardModelConfig(base=str(tiny_model_dir), epochs=1, lora_rank=2, learning_rate=1e-3)
    train_reward_model(log, tmp_path / "rm", config, log=lambda *a: None)
    assert "lora" not in json.dumps(json.loads((tmp_path / "rm" / "config.json").read_text())).lower()
    assert RewardModelReward(tmp_path / "rm")(["p"], ["it was great"], [True]).shape == (1,)


def test_cli_trains_and_reports(tmp_path, tiny_model_dir, preference_log, capsys):
    log = preference_log(tmp_path / "log.jsonl", n=20)
    code = main(
        [
            "reward-model",
            "train",
            "--data",
            str(log),
            "--output",
            str(tmp_path / "rm"),
            "--base",
            str(tiny_model_dir),
            "--epochs",
            "1",
            "--learning-rate",
            "0.001",
        ]
    )
    output = capsys.readouterr().out
    assert code == 0 and '"eval_accuracy"' in output and "reward='reward-model'" in output
    assert (tmp_path / "rm" / "reward_model.json").is_file()


def _one_prompt_log(path):
    append_record(path, preference_record("only", "x", "y", "a"))
    append_record(path, preference_record("only", "x", "z", "tie"))
    return path


@pytest.mark.parametrize(
    ("make_log", "message"),
    [
        (lambda p: p.write_text(""), "got an empty log"),
        (
            lambda p: p.write_text(
                '{"prompt": "p", "completion_a": "x", "completion_b": "y", "preference": "a"}\ngarbage\n'
            ),
            "on line 2 of",
        ),
        (
            _one_prompt_log,
            r"at least 2 prompts .*got 1 comparisons from 1 prompts \(the log has 2 preferences, 1 of "
            r"them ties, and 0 ratings\)",
        ),
    ],
    ids=["empty", "corrupt-line", "too-few-to-split"],
)
def test_cli_bad_logs_exit_with_the_reason(tmp_path, tiny_model_dir, capsys, make_log, message):
    log = tmp_path / "log.jsonl"
    make_log(log)
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "reward-model",
                "train",
                "--data",
                str(log),
                "--output",
                str(tmp_path / "rm"),
                "--base",
                str(tiny_model_dir),
            ]
        )
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err.replace("\n", " ")) or pytest.fail(capsys.readouterr().err)
    assert not (tmp_path / "rm").exists()


@pytest.mark.parametrize(
    ("setup", "error", "message"),
    [
        (lambda p: None, FileNotFoundError, "Expected a reward-model folder at .*no such folder"),
        (lambda p: p.mkdir(), ValueError, "without one .*textgen-env reward-model train"),
        (lambda p: (p.mkdir(), (p / "reward_model.json").write_text("{broken")), ValueError, "without one"),
        (
            lambda p: (p.mkdir(), (p / "reward_model.json").write_text('{"format": "textgen-env reward model"}')),
            ValueError,
            "with config.json",
        ),
    ],
    ids=["missing", "empty-folder", "corrupt-marker", "no-model"],
)
def test_a_folder_that_is_not_a_reward_model_is_a_clear_error(tmp_path, setup, error, message):
    folder = tmp_path / "rm"
    setup(folder)
    with pytest.raises(error, match=message):
        RewardModelReward(folder)


def test_a_plain_language_model_folder_is_not_a_reward_model(tiny_model_dir):
    with pytest.raises(ValueError, match=r"reward_model\.json written by textgen-env"):
        RewardModelReward(tiny_model_dir)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs"),
        ({"eval_fraction": 1.0}, "eval_fraction"),
        ({"lora_rank": -1}, "lora_rank"),
        ({"learning_rate": float("nan")}, "learning_rate"),
    ],
    ids=["epochs", "eval-fraction", "lora-rank", "lr-nan"],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=f"Expected {message}"):
        RewardModelConfig(**kwargs)


def test_equal_scores_get_a_unit_scale_the_loader_accepts(tiny):
    """A trunk that scores every text alike has no spread: the saved score_std is 1.0, never 0 (refused on load)."""
    from types import SimpleNamespace

    import torch

    from agents.reward_model import Comparison, _score_stats

    _, tokenizer = tiny

    def constant(**batch):
        return SimpleNamespace(logits=torch.full((batch["input_ids"].shape[0], 1), 0.25))

    comparisons = [Comparison("the movie was", "good", "bad"), Comparison("the film", "great", "awful")]
    assert _score_stats(constant, tokenizer, comparisons, 16) == (0.25, 1.0)


def test_accuracy_se_counts_the_comparisons_of_one_prompt_as_one_unit():
    # 4 prompts x 5 comparisons, each prompt all right or all wrong: the information is that of 4 values, not 20
    hits = np.repeat([1.0, 1.0, 0.0, 0.0], 5)
    prompts = [f"p{i}" for i in range(4) for _ in range(5)]
    per_prompt = np.array([1.0, 1.0, 0.0, 0.0])
    assert clustered_se(hits, prompts) == pytest.approx(per_prompt.std(ddof=1) / 2)  # equal clusters: SE of the means
    assert clustered_se(hits, prompts) > 2.5 * np.sqrt(0.25 / 20)  # the binomial SE, 2.58x too small here
    independent = [f"p{i}" for i in range(20)]  # one comparison per prompt: the plain SE
    assert clustered_se(hits, independent) == pytest.approx(hits.std(ddof=1) / np.sqrt(20))
    with pytest.raises(ValueError, match="Expected one cluster per value"):
        clustered_se(hits, prompts[:3])
