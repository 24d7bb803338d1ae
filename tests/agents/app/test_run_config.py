"""Named runs: ``textgen-env train --config FILE`` reads a TOML file of train settings; flags override it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agents.app.cli import main, train_options, train_settings
from agents.app.run_config import load_run_config

REPO = Path(__file__).resolve().parents[3]
CONFIGS = sorted((REPO / "configs").glob("*.toml"))


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_there_are_named_runs():
    assert {"main.toml", "dialogue.toml", "ppo.toml", "edit.toml", "rlhf.toml"} <= {path.name for path in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=[path.name for path in CONFIGS])
def test_every_named_run_reads_into_valid_settings(path):
    values = load_run_config(path, train_options())
    assert values, f"{path} sets nothing"
    settings = train_settings(["train", "--config", str(path)])
    for name, value in values.items():  # every key lands, in the run settings or the agent options
        assert getattr(settings, name, settings.agent_options.get(name)) == value, name


def test_the_main_job_file_is_the_defaults():
    named = train_settings(["train", "--config", str(REPO / "configs" / "main.toml")])
    assert named == train_settings(["train", "--output", "runs/default"])


def test_the_dialogue_file_is_the_documented_command():
    command = (
        "train --env dialogue --agent grpo --user simulated --scenarios train --eval-scenarios eval --max-turns 2 "
        "--max-new-tokens 16 --num-envs 8 --eval-samples-per-prompt 16 --steps 20000 --learning-rate 3e-5 "
        "--kl-target 2.5 --output runs/dialogue"
    )
    named = train_settings(["train", "--config", str(REPO / "configs" / "dialogue.toml")])
    assert named == train_settings(command.split())


def test_the_task_file_is_the_documented_command():
    named = train_settings(["train", "--config", str(REPO / "configs" / "task.toml")])
    command = "train --task arithmetic --difficulty 1 --output runs/arithmetic"
    assert named == train_settings(command.split())


def test_flags_override_the_file_and_the_file_overrides_the_defaults(tmp_path):
    path = _write(
        tmp_path, 'agent = "ppo"\nsteps = 640\nlearning_rate = 1e-4\nkl_target = "none"\ntensorboard = false\n'
    )
    settings = train_settings(["train", "--config", path, "--steps", "320", "--learning-rate", "2e-5"])
    assert (settings.agent, settings.steps, settings.tensorboard) == ("ppo", 320, False)
    assert settings.agent_options["learning_rate"] == 2e-5 and settings.agent_options["kl_target"] is None
    assert train_settings(["train", "--config", path, "--tensorboard"]).tensorboard is True
    assert train_settings(["train", "--config", path]).agent_options["learning_rate"] == 1e-4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lerning_rate = 1e-4\n", r"got 'lerning_rate' \(did you mean 'learning_rate'\?\)"),
        ("zzz = 1\n", r"got 'zzz'; the settings are \["),
        ('steps = "many"\n', r"Expected steps in .* to be a TOML int \(or \"none\"\), got 'many'"),
        ("steps = true\n", r"Expected steps in .* to be an integer, got True"),
        ("tensorboard = 1\n", r"Expected tensorboard in .* to be true or false, got 1"),
        ("steps = [1\n", r"Expected a TOML run config in .*, got a file TOML cannot read"),
        ('env = "atari"\n', r"Expected env to be one of \['textgen', 'dialogue'.*\], got 'atari'"),
    ],
    ids=["misspelt", "unknown", "string-for-int", "bool-for-int", "int-for-bool", "not-toml", "bad-value"],
)
def test_a_bad_run_file_is_one_line_and_exit_code_2(tmp_path, capsys, monkeypatch, text, message):
    monkeypatch.setattr("agents.app.training.run_training", lambda settings: pytest.fail("the run started"))
    path = _write(tmp_path, text)
    try:
        code = main(["train", "--config", path, "--output", str(tmp_path / "run")])
    except SystemExit as exit_info:  # a value TrainSettings refuses is a usage error of the train parser
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert re.search(message, err), err


def test_a_missing_run_file_is_named(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml', which does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_a_named_run_trains(tmp_path, tiny_model_dir):
    path = _write(
        tmp_path,
        f'agent = "reinforce"\nreward = "keyword"\nmodel = {tiny_model_dir!r}\nsteps = 16\nnum_envs = 2\n'
        "max_new_tokens = 4\neval_samples_per_prompt = 1\ntensorboard = false\nbf16_autocast = false\n",
    )
    output = tmp_path / "run"
    assert main(["train", "--config", path, "--output", str(output), "--steps", "8"]) == 0
    report = json.loads((output / "report.json").read_text(encoding="utf-8"))
    assert (report["settings"]["agent"], report["settings"]["steps"], report["settings"]["max_new_tokens"]) == (
        "reinforce",
        8,
        4,
    )


@pytest.mark.slow
def test_the_rlhf_run_trains_on_a_reward_model(tmp_path, tiny_model_dir, tiny_reward_model):
    folder, _ = tiny_reward_model
    path = _write(
        tmp_path,
        f'agent = "reinforce"\nreward = "reward-model"\nreward_model = {str(folder)!r}\nmodel = {tiny_model_dir!r}\n'
        "steps = 8\nnum_envs = 2\nmax_new_tokens = 4\neval_samples_per_prompt = 1\ntensorboard = false\n"
        "bf16_autocast = false\n",
    )
    output = tmp_path / "run"
    assert main(["train", "--config", path, "--output", str(output)]) == 0
    report = json.loads((output / "report.json").read_text(encoding="utf-8"))
    assert report["settings"]["reward_model"] == str(folder) and report["reward"] == "reward-model"


def test_a_reward_model_goes_with_the_reward_model_reward():
    with pytest.raises(SystemExit):
        train_settings(["train", "--reward", "reward-model"])
    settings = train_settings(["train", "--config", str(REPO / "configs" / "rlhf.toml")])
    assert settings.reward_kwargs() == {"path": "rm"}
    assert train_settings(["train"]).reward_kwargs() is None


def test_version_is_the_packages(capsys):
    from textgen_env import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"textgen-env {__version__}\n"
