"""``textgen-env train --task`` and ``eval --task``: the task evaluation in report.json, the log, errors."""

from __future__ import annotations

import csv
import json

import pytest

from agents.app.cli import main
from agents.app.training import TrainSettings
from textgen_env.testing import tiny_math_model_and_tokenizer, tiny_tool_model_and_tokenizer


def _saved(tmp_path_factory, name: str, factory) -> str:
    folder = tmp_path_factory.mktemp(name)
    model, tokenizer = factory()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def math_model_dir(tmp_path_factory) -> str:
    return _saved(tmp_path_factory, "tiny-math", tiny_math_model_and_tokenizer)


def _train(model: str, output: str, *extra: str) -> int:
    argv = ["train", "--task", "arithmetic", "--model", model, "--output", output, "--steps", "64", "--num-envs", "8"]
    argv += ["--eval-items", "3", "--eval-samples-per-prompt", "2", "--max-new-tokens", "3", "--no-tensorboard"]
    return main([*argv, *extra])


def test_train_task_writes_the_paired_task_evaluation(math_model_dir, tmp_path, capsys):
    assert _train(math_model_dir, str(tmp_path / "run"), "--eval-difficulties", "1,2") == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    task = report["task_eval"]
    for part in ("before", "after"):
        assert {"accuracy", "accuracy_se", "greedy_accuracy", "pass_at_k", "format_rate", "length", "kl"} <= set(
            task[part]
        )
        assert task[part]["items"] == 6 and set(task[part]["by_difficulty"]) == {"1", "2"}
    assert task["gain"]["accuracy"] == pytest.approx(task["after"]["accuracy"] - task["before"]["accuracy"])
    assert report["eval_reward_before"] == task["before"]["accuracy"]
    assert "accuracy (T=1)" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:Prompt of")  # the tools' description is longer than the tiny model's window
def test_train_task_with_tools_reports_tool_use(math_model_dir, tmp_path, capsys):
    assert _train(math_model_dir, str(tmp_path / "run"), "--tools", "calculator") == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    for part in ("before", "after"):
        assert 0.0 <= report["task_eval"][part]["tool_use"] <= 1.0 and report["task_eval"][part]["tool_calls"] >= 0
    assert "tool_use" in report["task_eval"]["gain"] and "tool use" in capsys.readouterr().out
    assert report["settings"]["tools"] == "calculator"


@pytest.fixture(scope="module")
def tool_model_dir(tmp_path_factory) -> str:
    return _saved(tmp_path_factory, "tiny-tool", tiny_tool_model_and_tokenizer)


@pytest.mark.filterwarnings("ignore:Prompt of")
def test_a_warmup_starts_rl_from_the_warmed_model_and_resumes_with_it(tool_model_dir, tmp_path, capsys):
    run = tmp_path / "run"
    warmup = ("--tools", "calculator", "--warmup-demos", "8", "--max-new-tokens", "100")
    assert _train(tool_model_dir, str(run), *warmup, "--steps", "32") == 0
    report = json.loads((run / "report.json").read_text())
    assert report["warmup"]["demonstrations"] == 8 and len(report["warmup"]["epoch_losses"]) == 3
    assert (run / "warmup" / "config.json").is_file()
    warmed = (run / "warmup" / "model.safetensors").read_bytes()
    assert _train(tool_model_dir, str(run), *warmup, "--steps", "200", "--resume") == 0
    assert (run / "warmup" / "model.safetensors").read_bytes() == warmed  # resumed with the same reference
    plain = ("--tools", "calculator", "--max-new-tokens", "100")
    assert _train(tool_model_dir, str(run), *plain, "--steps", "300", "--resume") == 0  # the flag left out
    assert json.loads((run / "report.json").read_text())["warmup"]["demonstrations"] == 8  # still its reference
    assert _train(tool_model_dir, str(run), *plain, "--steps", "32", "--overwrite") == 0  # a new run, no warm-up
    assert not (run / "warmup").exists() and "warmup" not in json.loads((run / "report.json").read_text())
    assert _train(tool_model_dir, str(run), *warmup, "--steps", "64", "--resume") == 2
    assert "the run did not warm up; resume without --warmup-demos" in capsys.readouterr().err


def test_auto_difficulty_is_logged_per_iteration(math_model_dir, tmp_path):
    assert _train(math_model_dir, str(tmp_path / "run"), "--difficulty", "auto", "--eval-difficulties", "1") == 0
    with (tmp_path / "run" / "progress.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert rows and all(row["task/difficulty"] == "1.0" for row in rows)


def test_the_task_job_defaults_replace_untouched_settings_only():
    settings = TrainSettings(task="arithmetic", output="runs/x", max_new_tokens=5)
    assert settings.max_new_tokens == 5 and settings.steps == 3_000
    assert settings.agent_options is not None and settings.agent_options["group_size"] == 8


def test_eval_task_reports_the_trained_model_against_its_reference(math_model_dir, tmp_path, capsys):
    argv = ["eval", "--task", "arithmetic", "--model", math_model_dir, "--reference", math_model_dir, "--items", "2"]
    assert main([*argv, "--samples", "2", "--gain", "--output", str(tmp_path / "report.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["gain"]["accuracy"] == 0.0 and printed["after"]["items"] == 2  # the same model twice
    assert json.loads((tmp_path / "report.json").read_text()) == printed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "no_such_task"], "Expected task to be one of"),
        (["--task", "arithmetic", "--difficulty", "hard"], "Expected difficulty to be an int, 'auto' or none"),
        (["--task", "arithmetic", "--difficulty", "42"], "Expected difficulty for task 'arithmetic'"),
        (["--task", "arithmetic", "--task-kwargs", "[1]"], "Expected task_kwargs to be a JSON object"),
        (["--tools", "calculator"], "Expected tools only with a task"),
        (["--task", "arithmetic", "--warmup-demos", "4"], "Expected warmup_demos only with the calculator"),
        (["--task", "arithmetic", "--tools", "abacus"], "Expected tools among ['calculator', 'python', 'search']"),
    ],
    ids=[
        "unknown-task",
        "bad-difficulty",
        "difficulty-out-of-range",
        "bad-kwargs",
        "tools-without-task",
        "bad-tool",
        "warmup-without-tools",
    ],
)
def test_bad_task_flags_end_in_one_error_line(math_model_dir, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        code = main(["train", "--model", math_model_dir, "--output", str(tmp_path / "r"), *argv])
        raise SystemExit(code)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(("textgen-env: error:", "usage:", "textgen-env train: error:")) and message in error
