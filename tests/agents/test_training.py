"""The main job end to end on the tiny model: report, logs, plot, exported model, resume, and the CLI."""

from __future__ import annotations

import csv
import json

import pytest

from agents.cli import main
from agents.training import TrainSettings, run_training
from textgen_env.testing import tiny_model_and_tokenizer

REPORT_KEYS = {
    "eval_reward_before",
    "eval_reward_after",
    "eval_kl",
    "eval_distinct2_before",
    "eval_distinct2_after",
    "wall_seconds",
    "agent",
    "model",
    "reward",
}


@pytest.fixture
def tiny_run(tmp_path):
    model, tokenizer = tiny_model_and_tokenizer()
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    (tmp_path / "train.txt").write_text("the movie was\ni think it was\nthe story is\n")
    (tmp_path / "eval.txt").write_text("the film was\nmy friend said it was\nthe music was\nthe ending was\n")

    def settings(**overrides) -> TrainSettings:
        values = dict(
            agent="ppo",
            reward="keyword",
            model=str(tmp_path / "tiny"),
            prompts=str(tmp_path / "train.txt"),
            eval_prompts=str(tmp_path / "eval.txt"),
            steps=8 * 4 * 4,
            output=str(tmp_path / "run"),
            num_envs=8,
            max_new_tokens=4,
            eval_every=2,
            checkpoint_every=1,
            agent_options={"learning_rate": 1e-2, "episodes_per_iteration": 8, "minibatch_size": 8},
        )
        values.update(overrides)
        return TrainSettings(**values)

    return settings, tmp_path


def test_train_writes_report_logs_plot_and_model(tiny_run):
    settings, root = tiny_run
    report = run_training(settings())
    assert set(report) >= REPORT_KEYS
    assert json.loads((root / "run" / "report.json").read_text()) == report
    assert report["eval_kl"] >= 0 and 0 < report["eval_distinct2_before"] <= 1
    rows = list(csv.DictReader((root / "run" / "progress.csv").open()))
    assert len(rows) == report["iterations"] >= 4
    assert any(row["eval/reward_mean"] for row in rows)
    assert (root / "run" / "curves.png").stat().st_size > 10_000
    assert (root / "run" / "model" / "config.json").is_file()
    assert list((root / "run" / "tensorboard").iterdir())
    samples = json.loads((root / "run" / "samples.json").read_text())
    assert len(samples["before"]) == len(samples["after"]) == 4


def test_resume_continues_from_the_checkpoint(tiny_run):
    settings, root = tiny_run
    first = run_training(settings(steps=8 * 4 * 2))
    resumed = run_training(settings(steps=8 * 4 * 4, resume=True))
    assert resumed["iterations"] > first["iterations"]
    assert resumed["eval_reward_before"] == first["eval_reward_before"]  # not re-measured on the trained model
    rows = list(csv.DictReader((root / "run" / "progress.csv").open()))
    assert [int(float(r["iteration"])) for r in rows] == list(range(1, resumed["iterations"] + 1))


def test_resume_without_checkpoint_is_an_error(tiny_run):
    settings, _ = tiny_run
    with pytest.raises(FileNotFoundError, match=r"Expected a checkpoint to resume from in .*checkpoint"):
        run_training(settings(resume=True))


def test_cli_train_generate_eval(tiny_run, capsys):
    _, root = tiny_run
    tiny = str(root / "tiny")
    output = str(root / "cli")
    args = ["train", "--model", tiny, "--reward", "keyword", "--prompts", str(root / "train.txt")]
    args += ["--eval-prompts", str(root / "eval.txt"), "--steps", "64", "--output", output, "--max-new-tokens", "4"]
    args += ["--episodes-per-iteration", "8", "--minibatch-size", "8", "--no-tensorboard"]
    assert main(args) == 0
    assert "eval_reward_after" in capsys.readouterr().out
    assert (
        main(["generate", "--model", f"{output}/model", "--reference", tiny, "--prompt", "the movie", "--num", "2"])
        == 0
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("the movie")]
    assert len(lines) == 2
    eval_args = ["eval", "--model", f"{output}/model", "--reference", tiny, "--reward", "keyword"]
    assert main([*eval_args, "--prompts", str(root / "eval.txt")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) == {"reward_mean", "kl_mean", "distinct2"} and summary["kl_mean"] >= 0


def test_cli_unknown_agent_lists_valid_ones(tiny_run):
    _, root = tiny_run
    with pytest.raises(ValueError, match=r"Expected agent to be one of \['dqn', 'grpo', 'ppo', 'reinforce'\]"):
        main(
            [
                "train",
                "--agent",
                "sac",
                "--model",
                str(root / "tiny"),
                "--reward",
                "keyword",
                "--output",
                str(root / "x"),
            ]
        )
