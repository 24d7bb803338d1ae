"""Settings declared once: ``textgen-env train``'s flags, their defaults and help, the docs' table and the checks
all come from the `TrainSettings` and agent-config fields (`agents.app.options`)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from agents import AGENTS, GRPOConfig, PPOConfig
from agents.app.cli import _agent_options, build_parser, main, train_flags_table
from agents.app.options import agent_option_fields, field_docs, field_options, parse_bool
from agents.app.training import TrainSettings, main_job_options
from textgen_env.testing import tiny_model_and_tokenizer

TRAINING_PAGE = Path(__file__).resolve().parents[3] / "docs" / "training.md"


def _train_args(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(["train", *argv])


def test_every_setting_is_a_flag_with_the_dataclass_default_and_docstring():
    args = _train_args([])
    docs = field_docs(TrainSettings)
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    for f in dataclasses.fields(TrainSettings):
        if f.name == "agent_options":
            continue
        assert getattr(args, f.name) == f.default, f.name
        assert docs[f.name] and docs[f.name].split(".")[0] in help_text, f.name
    for name, (option, _) in agent_option_fields().items():
        assert not hasattr(args, name)  # not given: the agent's (or the main job's) value stands
        assert f"--{name.replace('_', '-')}" in help_text and option.doc


@pytest.mark.parametrize("flag", ["--scenarios", "--scenario"], ids=["field", "alias"])
def test_scenario_is_an_alias_of_scenarios(flag):
    assert _train_args([flag, "refund"]).scenarios == "refund"
    assert not hasattr(_train_args([flag, "refund"]), "scenario")  # one setting, one dest
    option = {o.name: o for o in field_options(TrainSettings)}["scenarios"]
    assert option.aliases == ("--scenario",) and option.doc.endswith("Also `--scenario`.")  # the docs' table says so


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--kl-target", "none"], {"kl_target": None}),
        (["--agent", "ppo", "--whiten-advantages", "false", "--clip-range-value", "0.3"], {"whiten_advantages": False}),
        (["--group-size", "8", "--epochs", "2"], {"group_size": 8, "epochs": 2}),
        (["--kl-coef", "0.02"], {"kl_coef": 0.02, "kl_coef_min": 0.02}),  # a lower coefficient lowers the floor
        (["--kl-coef", "0.02", "--kl-coef-min", "0.01"], {"kl_coef_min": 0.01}),
    ],
    ids=["none", "bool", "grpo-ints", "floor-follows", "floor-given"],
)
def test_agent_flags_override_the_main_job_options(argv, expected):
    args = _train_args(argv)
    options = _agent_options(args)
    assert {key: options[key] for key in expected} == expected
    settings = TrainSettings(agent=args.agent, agent_options=options)  # and the agent's config takes them
    assert {k: v for k, v in main_job_options(args.agent).items() if k not in options} == {}
    assert settings.agent_options == options


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--agent", "ppo", "--group-size", "4"], "got unknown option(s) 'group_size'"),
        (["--agent", "dqn", "--kl-target", "3"], "Expected kl_coef=0 and kl_target=None for DQN"),
        (["--learning-rate", "-1"], "Expected learning_rate to be a finite number > 0, got -1.0"),
        (["--steps", "0"], "Expected steps to be an int > 0, got 0"),
        (["--epochs", "two"], "Expected int, got 'two'"),
        (["--whiten-advantages", "maybe"], "Expected true or false, got 'maybe'"),
        (["--baseline", "median"], "Expected one of ['running_mean', 'value', 'none'], got 'median'"),
    ],
    ids=["other-agents-option", "dqn-kl", "negative-lr", "zero-steps", "not-int", "not-bool", "not-choice"],
)
def test_bad_flags_exit_with_the_reason(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--output", str(tmp_path / "run"), *argv])
    assert exit_info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert message in err
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_unknown_agent_options_raise_naming_the_valid_ones():
    from agents import PPO
    from textgen_env import TextGenVectorEnv

    model, tokenizer = tiny_model_and_tokenizer()
    env = TextGenVectorEnv(num_envs=2, model=model, tokenizer=tokenizer, max_new_tokens=4)
    with pytest.raises(
        TypeError, match=r"Expected options of PPOConfig \(.*learning_rate.*\), got unknown .*'lerning_rate'"
    ):
        PPO(env, lerning_rate=1e-4)
    with pytest.raises(TypeError, match="unknown option"):
        GRPOConfig.from_dict({"group_size": 4, "lam": 0.9})
    assert PPOConfig.from_dict({"lam": 0.9, "written_by_an_old_version": 1}, strict=False).lam == 0.9
    with pytest.raises(TypeError, match="got unknown option"):
        TrainSettings(agent="grpo", agent_options={"lerning_rate": 1.0})


def test_field_options_resolve_types():
    options = {o.name: o for o in field_options(PPOConfig)}
    assert (options["lam"].kind, options["lam"].optional) == (float, False)
    assert (options["kl_target"].kind, options["kl_target"].optional) == (float, True)
    assert options["whiten_advantages"].kind is bool
    assert options["clip_range_value"].parse("none") is None
    assert parse_bool("Yes") is True and parse_bool("0") is False
    taken_by = {name: agents for name, (_, agents) in agent_option_fields().items()}
    assert taken_by["group_size"] == ("grpo",)
    assert set(taken_by["learning_rate"]) == set(AGENTS) | {"edit-reinforce", "edit-ppo"}
    assert taken_by["instruction"] == ("edit-reinforce", "edit-ppo")
    assert "seed" not in taken_by  # the run's --seed seeds the agent


def test_the_docs_table_is_the_generated_one():
    table = train_flags_table()
    assert table in TRAINING_PAGE.read_text(encoding="utf-8"), "regenerate with: python docs/generate.py --write"


@pytest.mark.parametrize("agent", ["ppo", "reinforce", "grpo", "dqn"], ids=str)
def test_main_job_options_are_those_each_agent_has(agent):
    from agents import agent_class

    options = main_job_options(agent)
    names = {f.name for f in dataclasses.fields(agent_class(agent).config_class)}
    assert set(options) <= names and options["bf16_autocast"] is True
    assert ("scale_rewards" in options) == (agent == "grpo")
    assert agent != "dqn" or not any(k.startswith("kl_") for k in options)
    TrainSettings(agent=agent)  # valid as they are
