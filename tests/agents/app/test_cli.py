"""The ``textgen-env`` command refuses before any work what would delete a user's files, and reports a user's error in
one line with exit code 2 (a bug, or ``--debug``, keeps its traceback); a checkpoint that carries code is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agents import PPO
from agents.app.cli import main
from textgen_env import TextGenVectorEnv
from textgen_env.storage import RunLock

REPO = Path(__file__).resolve().parents[3]


class WritesAMarker:
    """A pickle payload: unpickling it calls exec, which writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('payload ran')",)


def user_project(folder: Path) -> Path:
    """A folder this package did not write: the user's notes and sources."""
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "main.py").write_text("print('mine')\n")
    (folder / "notes.txt").write_text("my notes\n")
    return folder


def assert_intact(folder: Path) -> None:
    assert (folder / "notes.txt").read_text() == "my notes\n"
    assert (folder / "src" / "main.py").read_text() == "print('mine')\n"
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "src"]


def test_reward_model_train_refuses_a_users_folder_and_leaves_it_intact(
    tmp_path, tiny_model_dir, preference_log, capsys
):
    project = user_project(tmp_path / "my_project")
    log = preference_log(tmp_path / "log.jsonl", n=20)
    argv = ["reward-model", "train", "--data", str(log), "--output", str(project), "--base", tiny_model_dir]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--epochs", "1"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "got a folder it did not write, holding notes.txt, src" in err and "--overwrite" in err
    assert str(project) in err
    assert_intact(project)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl", "my_project"]  # no staging folder either


def _train_args(model: str, output: str, *extra: str) -> list[str]:
    settings = ["--agent", "ppo", "--reward", "keyword", "--steps", "32", "--max-new-tokens", "4", "--num-envs", "2"]
    return ["train", *settings, "--model", model, "--output", output, "--no-tensorboard", *extra]


@pytest.mark.parametrize("output", [".", "..", "/", "~"], ids=["dot", "dot-dot", "root", "home"])
@pytest.mark.parametrize("command", ["train", "reward-model"], ids=str)
def test_outputs_that_name_a_folder_of_others_are_rejected_at_argument_time(
    tmp_path, monkeypatch, capsys, tiny_model_dir, command, output
):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    if command == "train":
        argv = _train_args(tiny_model_dir, output)
    else:
        argv = ["reward-model", "train", "--data", "log.jsonl", "--output", output]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "Expected --output to name a folder of its own" in capsys.readouterr().err


def test_train_cannot_replace_the_model_it_reads_even_with_overwrite(tmp_path, tiny, capsys):
    model, tokenizer = tiny
    run = tmp_path / "run"
    model.save_pretrained(run / "model")
    tokenizer.save_pretrained(run / "model")
    with pytest.raises(SystemExit) as exit_info:
        main(_train_args(str(run / "model"), str(run), "--overwrite"))
    assert exit_info.value.code == 2
    assert "Expected --model outside the folder this run replaces" in capsys.readouterr().err
    assert (run / "model" / "config.json").is_file()


@pytest.mark.parametrize("folder", ["model", "checkpoint"], ids=str)
def test_train_refuses_a_users_folder_where_it_writes_before_any_work(
    tmp_path, tiny_model_dir, capsys, monkeypatch, folder
):
    def no_work(*args, **kwargs):
        raise AssertionError("the run started working")

    monkeypatch.setattr("agents.app.training._build", no_work)
    run = tmp_path / "run"
    project = user_project(run / folder)
    code = main(_train_args(tiny_model_dir, str(run)))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"textgen-env: error: Expected {str(project)!r} to be empty or a ")
    assert "--overwrite" in err
    assert_intact(project)
    assert sorted(p.name for p in run.iterdir()) == [folder]  # no lock, log or staging folder written


def _checkpointed_run(tmp_path: Path, tiny_model_dir: str) -> Path:
    """An output folder whose checkpoint a ``train --resume`` reads."""
    env = TextGenVectorEnv(num_envs=2, model=tiny_model_dir, reward="keyword", max_new_tokens=4)
    PPO(env, episodes_per_iteration=2, minibatch_size=2).save(tmp_path / "run" / "checkpoint")
    return tmp_path / "run"


def _run_cli(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    variables = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    command = [sys.executable, "-m", "agents.app.cli", *argv]
    return subprocess.run(command, cwd=REPO, env=variables, capture_output=True, text=True, timeout=300)


def test_resume_from_a_truncated_checkpoint_is_one_line_and_exit_code_2(tmp_path, tiny_model_dir):
    run = _checkpointed_run(tmp_path, tiny_model_dir)
    data = (run / "checkpoint" / "agent.pt").read_bytes()
    (run / "checkpoint" / "agent.pt").write_bytes(data[: len(data) // 2])
    done = _run_cli(_train_args(tiny_model_dir, str(run), "--resume"))
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert [line for line in lines if line.startswith("textgen-env: error:")] == lines[-1:]
    assert "agent.pt' is corrupt or truncated" in lines[-1] and "Start the run over in a new --output" in lines[-1]


def test_resume_from_a_checkpoint_carrying_code_is_refused_and_the_code_never_runs(tmp_path, tiny_model_dir):
    run = _checkpointed_run(tmp_path, tiny_model_dir)
    marker = tmp_path / "marker.txt"
    state = torch.load(run / "checkpoint" / "agent.pt", weights_only=True)
    torch.save({**state, "extra": {"note": WritesAMarker(marker)}}, run / "checkpoint" / "agent.pt")
    done = _run_cli(_train_args(tiny_model_dir, str(run), "--resume"))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "holds objects other than tensors and plain data, refused unread" in done.stderr
    assert not marker.exists()
    assert torch.load(run / "checkpoint" / "agent.pt", weights_only=False) and marker.exists()  # a live payload


def test_debug_shows_the_traceback_of_a_user_error(tmp_path, tiny_model_dir, monkeypatch):
    run = _checkpointed_run(tmp_path, tiny_model_dir)
    (run / "checkpoint" / "agent.pt").write_bytes(b"not a zip")
    argv = _train_args(tiny_model_dir, str(run), "--resume")
    with pytest.raises(ValueError, match="Expected a readable checkpoint"):
        main([*argv, "--debug"])
    monkeypatch.setenv("TEXTGEN_ENV_DEBUG", "1")
    with pytest.raises(ValueError, match="Expected a readable checkpoint"):
        main(argv)


@pytest.mark.parametrize(
    "bug",
    [KeyError("iteration"), AttributeError("'NoneType' object has no attribute 'policy'"), ValueError("math error")],
    ids=["key-error", "attribute-error", "value-error-without-expected"],
)
def test_a_bug_keeps_its_traceback(tmp_path, tiny_model_dir, monkeypatch, bug):
    def broken(*args, **kwargs):
        raise bug

    monkeypatch.setattr("agents.app.training.run_training", broken)
    with pytest.raises(type(bug)):
        main(_train_args(tiny_model_dir, str(tmp_path / "run")))


@pytest.mark.parametrize("problem", ["held", "symlinked"], ids=str)
def test_a_held_or_symlinked_run_lock_is_one_line_and_exit_code_2(tmp_path, tiny_model_dir, capsys, problem):
    run = tmp_path / "run"
    run.mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_text("the user's file\n")
    argv = _train_args(tiny_model_dir, str(run))
    if problem == "symlinked":
        (run / ".lock").symlink_to(precious)
        code = main(argv)
        expected = "to be a regular file, got a symbolic link"
    else:
        with RunLock(run):
            code = main(argv)
        expected = "Expected no other run writing"
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("textgen-env: error: ") and expected in err
    assert precious.read_text() == "the user's file\n"
