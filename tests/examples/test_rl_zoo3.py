"""examples/rl_zoo3: the zoo's real train command on TextGen-v0 (top-k / hidden modes) saves a model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HYPERPARAMS = REPO / "examples" / "rl_zoo3" / "hyperparams.yml"


@pytest.mark.slow  # a subprocess that imports torch, transformers and the zoo, then trains 256 steps
def test_rl_zoo3_train_saves_a_model(tiny_model_dir, tmp_path):
    pytest.importorskip("rl_zoo3")
    logs = tmp_path / "logs"
    command = [
        *(sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", "TextGen-v0"),
        *("--gym-packages", "textgen_env", "-conf", str(HYPERPARAMS)),
        *("-n", "256", "--eval-freq", "-1", "--seed", "0", "-f", str(logs), "--num-threads", "1"),
        "--env-kwargs",
        "action_mode:'top_k'",
        "observation_mode:'hidden'",
        f"model:{tiny_model_dir!r}",
        "max_new_tokens:8",
        "reward:'keyword'",  # the README's second command: a dict argument through the zoo's eval()
        "reward_kwargs:dict(keywords=['great'])",
    ]
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))  # this checkout's textgen_env
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (logs / "ppo" / "TextGen-v0_1" / "TextGen-v0.zip").is_file()
    assert "total_timesteps | 256" in result.stdout
