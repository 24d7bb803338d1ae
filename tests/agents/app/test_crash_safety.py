"""Crash-safe runs: a real ``textgen-env train`` subprocess is SIGKILLed at named moments (inside checkpoint saves
and the model export, between iterations, after the evaluation) and at random moments, then resumed with the same
command plus ``--resume``; every resumed run ends with the weights of an uninterrupted run, bit for bit, and a
``progress.csv`` with each iteration once. Also: corrupt checkpoints, an unwritable folder, a full disk, two runs."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from agents import PPO
from agents.app.run_folder import RunLock
from agents.app.training import TrainSettings, run_training
from agents.checkpoint import read_checkpoint
from textgen_env import TextGenVectorEnv
from textgen_env.storage import KILL_AT_VARIABLE, retired_folder
from textgen_env.testing import tiny_model_and_tokenizer

ITERATIONS = 3


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    model, tokenizer = tiny_model_and_tokenizer()
    model.save_pretrained(root / "tiny")
    tokenizer.save_pretrained(root / "tiny")
    (root / "train.txt").write_text("the movie was\ni think it was\nthe story is\n")
    (root / "eval.txt").write_text("the film was\nthe music was\n")
    return root


def _command(root: Path, output: Path) -> list[str]:
    return [
        *(sys.executable, "-m", "agents.app.cli", "train", "--agent", "ppo", "--reward", "keyword"),
        *(
            "--model",
            str(root / "tiny"),
            "--prompts",
            str(root / "train.txt"),
            "--eval-prompts",
            str(root / "eval.txt"),
        ),
        *("--steps", str(32 * ITERATIONS), "--num-envs", "8", "--max-new-tokens", "4", "--output", str(output)),
        *("--episodes-per-iteration", "8", "--minibatch-size", "8", "--learning-rate", "0.01"),
        *("--checkpoint-every", "2", "--eval-every", "2", "--eval-samples-per-prompt", "2", "--no-tensorboard"),
    ]


def _run(command: list[str], kill_at: str | None = None, kill_after: float | None = None) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    env.pop(KILL_AT_VARIABLE, None)
    if kill_at:
        env[KILL_AT_VARIABLE] = kill_at
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if kill_after is not None:
        time.sleep(kill_after)
        process.send_signal(signal.SIGKILL)
    _, err = process.communicate(timeout=300)
    if process.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"train exited with {process.returncode}:\n{err[-3000:]}")
    return process.returncode


def _weights(output: Path) -> dict[str, torch.Tensor]:
    return load_file(output / "model" / "model.safetensors")


def _iterations(output: Path) -> list[int]:
    with (output / "progress.csv").open(encoding="utf-8") as stream:
        return [int(float(row["iteration"])) for row in csv.DictReader(stream)]


@pytest.fixture(scope="module")
def reference(workspace):
    """The uninterrupted run: its weights and how long it took."""
    output = workspace / "reference"
    start = time.perf_counter()
    assert _run(_command(workspace, output)) == 0
    return _weights(output), time.perf_counter() - start


def _assert_like_the_reference(output: Path, reference) -> None:
    weights, _ = reference
    resumed = _weights(output)
    assert resumed.keys() == weights.keys()
    assert all(torch.equal(resumed[k], weights[k]) for k in weights), "resumed weights differ from the reference"
    assert _iterations(output) == list(range(1, ITERATIONS + 1))
    assert not retired_folder(output / "checkpoint").exists() and not retired_folder(output / "model").exists()


KILL_POINTS = {
    "before-first-checkpoint": "iteration:logged:1",
    "checkpoint-staged": "checkpoint:staged:1",  # the first save, its files written, nothing renamed yet
    "checkpoint-between-renames": "checkpoint:retired:1",  # the old checkpoint moved aside, the new not in place
    "after-a-row-past-the-checkpoint": "iteration:logged:3",
    "after-the-evaluation": "eval_after:written",
    "inside-the-export": "export:staged",
}


@pytest.mark.slow
@pytest.mark.parametrize("point", list(KILL_POINTS.values()), ids=list(KILL_POINTS))
def test_a_kill_at_a_named_moment_resumes_to_the_same_weights(workspace, reference, point):
    output = workspace / point.replace(":", "-")
    command = _command(workspace, output)
    assert _run(command, kill_at=point) == -signal.SIGKILL
    assert _run([*command, "--resume"]) == 0
    _assert_like_the_reference(output, reference)


@pytest.mark.slow
def test_a_kill_while_a_finished_run_replaces_its_model_resumes_to_the_same_weights(workspace, reference):
    output = workspace / "rerun"
    command = _command(workspace, output)
    assert _run(command) == 0
    assert _run([*command, "--resume"], kill_at="export:retired") == -signal.SIGKILL
    assert not (output / "model").exists() and retired_folder(output / "model").exists()  # the state under test
    assert _run([*command, "--resume"]) == 0
    _assert_like_the_reference(output, reference)


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.45, 0.7, 0.9], ids=["early", "middle", "late"])
def test_a_kill_at_a_random_moment_resumes_to_the_same_weights(workspace, reference, fraction):
    _, duration = reference
    delay = float(np.random.default_rng(int(fraction * 100)).uniform(0.9, 1.1) * fraction * duration)
    output = workspace / f"random-{fraction}"
    command = _command(workspace, output)
    _run(command, kill_after=delay)  # may also finish first on a fast machine: resuming then changes nothing
    assert _run([*command, "--resume"]) == 0
    _assert_like_the_reference(output, reference)


# ------------------------------------------------------------------------------------- errors, in process
@pytest.fixture
def saved_agent(tmp_path):
    model, tokenizer = tiny_model_and_tokenizer()
    env = TextGenVectorEnv(num_envs=2, model=model, tokenizer=tokenizer, max_new_tokens=4)
    agent = PPO(env, episodes_per_iteration=2, minibatch_size=2)
    agent.save(tmp_path / "checkpoint")
    return agent, env, tmp_path / "checkpoint"


def test_a_truncated_checkpoint_is_named_and_the_retired_copy_used(saved_agent):
    agent, env, folder = saved_agent
    data = (folder / "agent.pt").read_bytes()
    (folder / "agent.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"Expected a readable checkpoint .*/agent.pt' is corrupt or truncated"):
        PPO.load(folder, env)
    retired = retired_folder(folder)
    retired.mkdir()
    (retired / "agent.pt").write_bytes(data)
    with pytest.warns(UserWarning, match="using the intact copy"):
        state = read_checkpoint(folder)
    assert state["iteration"] == agent.iteration


def test_a_file_that_is_no_checkpoint_is_refused(saved_agent):
    _, env, folder = saved_agent
    torch.save({"weights": 1}, folder / "agent.pt")
    with pytest.raises(ValueError, match="is not an agent checkpoint"):
        PPO.load(folder, env)


def _settings(root: Path, **overrides) -> TrainSettings:
    model, tokenizer = tiny_model_and_tokenizer()
    model.save_pretrained(root / "tiny")
    tokenizer.save_pretrained(root / "tiny")
    values = dict(agent="ppo", reward="keyword", model=str(root / "tiny"), steps=32, max_new_tokens=4)
    values.update(output=str(root / "run"), tensorboard=False)
    values.update(overrides)
    return TrainSettings(**values)


def test_an_unwritable_output_is_reported_before_training(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    settings = _settings(tmp_path, output=str(tmp_path / "a-file" / "run"))
    with pytest.raises(PermissionError, match=r"Expected a writable output folder .*a-file/run"):
        run_training(settings)


def test_a_full_disk_is_reported_before_training(tmp_path, monkeypatch):
    import agents.app.run_folder

    usage = agents.app.run_folder.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(agents.app.run_folder.shutil, "disk_usage", lambda _: usage._replace(free=1000))
    with pytest.raises(OSError, match=r"Expected at least 0.\d+ GB free .* got 0.00 GB"):
        run_training(_settings(tmp_path))
    assert not (tmp_path / "run" / "checkpoint").exists() and not (tmp_path / "run" / "progress.csv").exists()


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    settings = _settings(tmp_path)
    with RunLock(settings.output), pytest.raises(RuntimeError, match="Expected no other run writing"):
        run_training(settings)
