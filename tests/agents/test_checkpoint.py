"""Checkpoints are data, never code: a pickle payload is refused unread, metadata is validated (file and field named),
and DQN's replay buffer is stored as plain data, so its checkpoint loads with weights_only=True and resumes exactly."""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from agents import DQN, PPO
from agents.checkpoint import CheckpointError, read_checkpoint
from agents.rollout import Episode


class WritesAMarker:
    """A pickle payload: unpickling it calls exec, which writes the marker file."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('payload ran')",)


def write_hostile_checkpoint(folder, marker) -> None:
    """Replace ``agent.pt`` in the checkpoint `folder` with its own state plus a payload that writes `marker`."""
    state = torch.load(folder / "agent.pt", weights_only=True)
    state["extra"] = {"note": WritesAMarker(marker)}
    torch.save(state, folder / "agent.pt")


@pytest.fixture
def saved_ppo(keyword_env, tmp_path):
    env = keyword_env(2)
    PPO(env, episodes_per_iteration=2, minibatch_size=2).save(tmp_path / "checkpoint")
    return env, tmp_path / "checkpoint"


def test_a_checkpoint_whose_pickle_runs_code_is_refused_and_the_code_never_runs(saved_ppo, tmp_path):
    env, folder = saved_ppo
    marker = tmp_path / "marker.txt"
    write_hostile_checkpoint(folder, marker)
    with pytest.raises(CheckpointError, match=r"agent.pt' holds objects other than tensors .* refused unread"):
        PPO.load(folder, env)
    assert not marker.exists()
    shutil.copytree(folder, tmp_path / "copy")  # the payload is real: an unrestricted load would have run it
    torch.load(tmp_path / "copy" / "agent.pt", weights_only=False)
    assert marker.read_text() == "payload ran"


def _edit_state(field, value):
    def edit(state):
        if field.startswith("config."):
            state["config"][field.split(".", 1)[1]] = value
        elif field == "history":
            state["history"] = [{"losses/policy": value}]
        else:
            state[field] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_edit_state("iteration", -1), r"Expected iteration in '.*agent.pt' to be an int >= 0, got -1"),
        (_edit_state("num_timesteps", "many"), r"Expected num_timesteps in '.*agent.pt' to be an int >= 0"),
        (_edit_state("algorithm", 3), r"Expected algorithm in '.*agent.pt' to be an algorithm name, got 3"),
        (_edit_state("config.learning_rate", float("nan")), r"Expected config\['learning_rate'\] in '.*agent.pt'"),
        (_edit_state("config.clip_range", -0.5), r"Expected a valid config in '.*agent.pt', got: Expected clip"),
        (_edit_state("history", float("inf")), r"Expected history\[0\]\['losses/policy'\] in '.*agent.pt'"),
        (_edit_state("config", [1, 2]), r"Expected config in '.*agent.pt' to be a dict of options"),
    ],
    ids=[
        "negative-iteration",
        "text-timesteps",
        "algorithm-type",
        "nan-option",
        "invalid-option",
        "inf-history",
        "config-type",
    ],
)
def test_invalid_checkpoint_metadata_is_refused_naming_the_file_and_the_field(saved_ppo, edit, message):
    env, folder = saved_ppo
    state = torch.load(folder / "agent.pt", weights_only=True)
    edit(state)
    torch.save(state, folder / "agent.pt")
    with pytest.raises(CheckpointError, match=message):
        PPO.load(folder, env)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ('{"algorithm": "ppo", "iteration": 7, "num_timesteps": 0}', r"Expected iteration in '.*meta.json' to equal"),
        ("{not json", r"Expected '.*meta.json' to be a JSON object, got unreadable JSON"),
        ("[1, 2]", r"Expected '.*meta.json' to be a JSON object, got list"),
    ],
    ids=["disagrees", "not-json", "not-an-object"],
)
def test_invalid_meta_json_is_refused(saved_ppo, meta, message):
    _, folder = saved_ppo
    (folder / "meta.json").write_text(meta)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(folder)


DQN_OPTIONS = dict(episodes_per_iteration=4, minibatch_size=4, learning_starts=4, gradient_steps=2, seed=3)


def test_dqn_checkpoint_is_plain_data_and_resumes_to_the_same_weights(keyword_env, tmp_path):
    full = DQN(keyword_env(4), **DQN_OPTIONS).learn(4 * 4 * 4)
    first = DQN(keyword_env(4), **DQN_OPTIONS)
    first.learn(4 * 4 * 2, checkpoint_dir=tmp_path / "run")
    state = torch.load(tmp_path / "run" / "agent.pt", weights_only=True)  # no allow-listed class needed
    assert len(state["extra"]["buffer"]) == 8 and isinstance(state["extra"]["buffer"][0], dict)
    resumed = DQN.load(tmp_path / "run", keyword_env(4))
    assert list(resumed.buffer) == list(first.buffer)
    resumed.learn(4 * 4 * 4)
    assert resumed.iteration == full.iteration >= 3 and resumed.num_timesteps == full.num_timesteps
    for a, b in zip(full.policy.state_dict().values(), resumed.policy.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(full.target_model.state_dict().values(), resumed.target_model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_dqn_checkpoint_of_0_2_with_episode_objects_still_loads(keyword_env, tmp_path):
    agent = DQN(keyword_env(4), **DQN_OPTIONS)
    agent.learn(4 * 4, checkpoint_dir=tmp_path / "run")
    state = torch.load(tmp_path / "run" / "agent.pt", weights_only=True)
    state["extra"]["buffer"] = [Episode(**item) for item in state["extra"]["buffer"]]  # 0.2 pickled the dataclass
    torch.save(state, tmp_path / "run" / "agent.pt")
    resumed = DQN.load(tmp_path / "run", keyword_env(4))
    assert list(resumed.buffer) == list(agent.buffer)


def test_a_replay_episode_with_other_fields_is_refused(keyword_env, tmp_path):
    agent = DQN(keyword_env(4), **DQN_OPTIONS)
    agent.learn(4 * 4, checkpoint_dir=tmp_path / "run")
    state = torch.load(tmp_path / "run" / "agent.pt", weights_only=True)
    state["extra"]["buffer"][1] = {**dataclasses.asdict(agent.buffer[1]), "code": "x"}
    torch.save(state, tmp_path / "run" / "agent.pt")
    with pytest.raises(ValueError, match=r"Expected replay episode 1 to have the fields \[.*\], got \[.*'code'"):
        DQN.load(tmp_path / "run", keyword_env(4))
    json.dumps(state["extra"]["buffer"][0])  # the stored form is plain data


def test_every_torch_load_in_the_package_is_restricted_to_weights():
    """Item 1 of issue 23 for the whole package: no ``torch.load`` that could run a file's pickled code."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for package in ("agents", "textgen_env"):
        for source in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
                func = getattr(node, "func", None)
                if isinstance(node, ast.Call) and isinstance(func, ast.Attribute) and func.attr == "load":
                    owner = func.value
                    if isinstance(owner, ast.Name) and owner.id == "torch":
                        flags = [k.value for k in node.keywords if k.arg == "weights_only"]
                        if not (flags and isinstance(flags[0], ast.Constant) and flags[0].value is True):
                            offenders.append(f"{source.relative_to(root)}:{node.lineno}")
    assert offenders == []
