"""The main job end to end on the tiny model: report, logs, plot, exported model, resume, and the CLI."""

from __future__ import annotations

import csv
import json

import pytest

from agents.app.cli import main
from agents.app.training import TrainSettings, run_training
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
    "monitors",
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
    assert len(samples["before"]) == len(samples["after"]) == 4 * 8  # 4 prompts x 8 samples, by default
    assert report["eval_completions"] == 32 and report["eval_samples_per_prompt"] == 8
    assert report["eval_gain"] == pytest.approx(report["eval_reward_after"] - report["eval_reward_before"], abs=1e-9)
    assert report["eval_gain_se"] > 0 and report["eval_kl_se"] > 0
    assert report["settings"]["max_minutes"] is None  # bounded by the token budget alone
    assert report["monitors"]["thresholds"]["length_drift"] > 0 and "warnings" in report["monitors"]


def test_same_command_and_seed_give_the_same_weights(tiny_run):
    import torch

    from textgen_env import load_model

    settings, root = tiny_run
    first = run_training(settings(output=str(root / "a"), eval_every=0))
    second = run_training(settings(output=str(root / "b"), eval_every=0))
    assert first["eval_gain"] == second["eval_gain"] and first["timesteps"] == second["timesteps"]
    model_a, _ = load_model(str(root / "a" / "model"))
    model_b, _ = load_model(str(root / "b" / "model"))
    for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("agent", "bf16"), [("ppo", False), ("grpo", False), ("grpo", True)], ids=["ppo", "grpo", "grpo-bf16"]
)
def test_quick_evaluations_leave_training_unchanged(tiny_run, agent, bf16):
    """The curves' quick evaluations draw from their own generators: with or without them, the same weights."""
    import torch

    from textgen_env import load_model

    settings, root = tiny_run
    options = {"learning_rate": 1e-2, "episodes_per_iteration": 8, "minibatch_size": 8, "bf16_autocast": bf16}
    with_evals = run_training(settings(agent=agent, output=str(root / "a"), eval_every=1, agent_options=options))
    without = run_training(settings(agent=agent, output=str(root / "b"), eval_every=0, agent_options=options))
    rows = list(csv.DictReader((root / "a" / "progress.csv").open()))
    assert all(row["eval/reward_mean"] for row in rows)  # every iteration was evaluated
    assert with_evals["eval_gain"] == without["eval_gain"]
    model_a, _ = load_model(str(root / "a" / "model"))
    model_b, _ = load_model(str(root / "b" / "model"))
    for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_resume_continues_from_the_checkpoint(tiny_run):
    settings, root = tiny_run
    first = run_training(settings(steps=8 * 4 * 2))
    resumed = run_training(settings(steps=8 * 4 * 4, resume=True))
    assert resumed["iterations"] > first["iterations"]
    assert resumed["eval_reward_before"] == first["eval_reward_before"]  # not re-measured on the trained model
    rows = list(csv.DictReader((root / "run" / "progress.csv").open()))
    assert [int(float(r["iteration"])) for r in rows] == list(range(1, resumed["iterations"] + 1))


def test_resume_with_other_evaluation_settings_is_an_error(tiny_run):
    settings, _ = tiny_run
    run_training(settings(steps=8 * 4 * 2))
    with pytest.raises(ValueError, match=r"Expected the resumed run's eval_samples_per_prompt and seed \(8, 0\)"):
        run_training(settings(steps=8 * 4 * 4, resume=True, eval_samples_per_prompt=2))


def test_resume_without_checkpoint_starts_from_the_beginning(tiny_run):
    settings, _ = tiny_run
    with pytest.warns(UserWarning, match="No checkpoint in .* yet: resuming from the beginning"):
        resumed = run_training(settings(resume=True))
    assert resumed["iterations"] == 4


def test_cli_train_generate_eval(tiny_run, capsys):
    _, root = tiny_run
    tiny = str(root / "tiny")
    output = str(root / "cli")
    args = ["train", "--model", tiny, "--reward", "keyword", "--prompts", str(root / "train.txt")]
    args += ["--eval-prompts", str(root / "eval.txt"), "--steps", "64", "--output", output, "--max-new-tokens", "4"]
    args += ["--episodes-per-iteration", "8", "--minibatch-size", "8", "--num-envs", "8", "--no-tensorboard"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "paired gain" in printed and "4 prompts x 8 samples, shared seeds" in printed
    assert (
        main(["generate", "--model", f"{output}/model", "--reference", tiny, "--prompt", "the movie", "--num", "2"])
        == 0
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("the movie")]
    assert len(lines) == 2
    eval_args = ["eval", "--model", f"{output}/model", "--reference", tiny, "--reward", "keyword"]
    assert main([*eval_args, "--prompts", str(root / "eval.txt"), "--gain"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"reward", "reward_se", "kl", "kl_se", "distinct2", "length"} <= set(summary) and summary["kl"] >= 0
    assert summary["completions"] == 4 * 8 and summary["gain_se"] > 0
    assert summary["gain"] == pytest.approx(summary["reward"] - summary["reward_before"], abs=1e-9)


def test_cli_unknown_agent_lists_valid_ones(tiny_run, capsys):
    _, root = tiny_run
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--agent", "sac", "--model", str(root / "tiny"), "--output", str(root / "x")])
    assert exit_info.value.code == 2
    assert "Expected agent to be one of ['dqn', 'grpo', 'ppo', 'reinforce'], got 'sac'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--env", "chat"], "Expected --env to be one of ['textgen', 'dialogue'], got 'chat'"),
        (["--env", "dialogue", "--eval-scenarios", "weather"], "Expected scenario to be one of"),
        (["--env", "dialogue", "--max-turns", "0"], "Expected max_turns to be an int > 0, got 0"),
    ],
    ids=["unknown-env", "unknown-scenario", "no-turns"],
)
def test_cli_eval_names_a_bad_env_or_scenario(tiny_run, capsys, flags, message):
    _, root = tiny_run
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--model", str(root / "tiny"), "--reference", str(root / "tiny"), "--user", "rule", *flags])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("agent", ["ppo", "reinforce"])
def test_cli_trains_the_edit_agents(tiny_run, capsys, agent):
    _, root = tiny_run
    drafts = root / "drafts.txt"
    drafts.write_text("the movie was very slow and sad .\nthe plot was very long , the cast was sad .\n")
    output = root / f"edit-{agent}"
    args = ["train", "--env", "edit", "--agent", agent, "--model", str(root / "tiny"), "--reward", "keyword"]
    args += ["--drafts", str(drafts), "--eval-drafts", str(drafts), "--steps", "12", "--num-envs", "2"]
    args += ["--episodes-per-iteration", "2", "--minibatch-size", "1" if agent == "ppo" else "2"]
    args += ["--eval-samples-per-prompt", "2", "--output", str(output), "--no-tensorboard"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "2 drafts x 2 edits, shared seeds; reward = gain" in printed and "edit steps in" in printed
    report = json.loads((output / "report.json").read_text())
    assert report["timesteps"] >= 12 and report["eval_completions"] == 4 and report["eval_kl_before"] == 0.0
    assert report["agent_config"]["minibatch_size"] == (1 if agent == "ppo" else 2)
    assert (output / "model" / "model.safetensors").is_file() and (output / "checkpoint" / "agent.pt").is_file()
    assert main([*args, "--resume", "--steps", "24"]) == 0  # continues from the checkpoint
    assert json.loads((output / "report.json").read_text())["timesteps"] >= 24


def test_cli_edit_env_takes_only_the_edit_agents(tiny_run, capsys):
    _, root = tiny_run
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--env", "edit", "--agent", "grpo", "--model", str(root / "tiny"), "--output", str(root / "x")])
    assert exit_info.value.code == 2
    assert "Expected agent to be one of ['ppo', 'reinforce'] with env 'edit', got 'grpo'" in capsys.readouterr().err


def test_grpo_zero_variance_filtering_is_counted_in_the_log(tiny_run):
    settings, root = tiny_run
    options = {"learning_rate": 1e-2, "episodes_per_iteration": 8, "minibatch_size": 8, "group_size": 2}
    run_training(settings(agent="grpo", eval_every=0, agent_options=options | {"max_resample_rounds": 2}))
    with open(root / "run" / "progress.csv") as file:
        rows = list(csv.DictReader(file))
    assert rows and all(0.0 <= float(row["rollout/zero_variance_groups"]) <= 1.0 for row in rows)
    assert all(float(row["rollout/dropped_groups"]) >= 0.0 for row in rows)
