"""TextGen-v0 as a TorchRL env: `torchrl.envs.GymEnv` wraps it, `check_env_specs` checks it, a rollout runs it.

TorchRL speaks TensorDicts: a rollout is one TensorDict of shape (steps,) holding the observations, actions and the
``("next", "reward")`` of every step. ``categorical_action_encoding=True`` keeps the action a token index (TorchRL's
default for a Discrete space is one-hot). The policy here is random (``rollout`` without a policy samples the action
spec); any TorchRL policy module that writes an ``action`` key fits in its place.

Runs offline on the tiny test model; ``--model`` takes a Hugging Face name or a local folder (``pip install -e
".[torchrl]"`` for torchrl)::

    python examples/torchrl_gymenv.py [--model default|tiny|PATH] [--steps 64]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence

import textgen_env  # noqa: F401 (registers TextGen-v0)
from textgen_env.testing import tiny_model_and_tokenizer


def make_env(model: str, **kwargs: object):
    """TextGen-v0 in TorchRL's GymEnv, top-k actions and hidden-state observations (``model``: name or folder)."""
    from torchrl.envs import GymEnv

    return GymEnv(
        "TextGen-v0",
        categorical_action_encoding=True,
        model=None if model == "default" else model,
        action_mode="top_k",
        top_k=5,
        observation_mode="hidden",
        max_new_tokens=8,
        **kwargs,
    )


def main(argv: Sequence[str] | None = None) -> float:
    """Check the env's specs, run one random rollout, print the rewards and return the rollout's reward sum."""
    from torchrl.envs.utils import check_env_specs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="'default' (SmolLM2-135M), 'tiny' or a model name or folder")
    parser.add_argument("--steps", type=int, default=64, help="rollout length (episodes restart when they end)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        model = args.model
        if model == "tiny":  # GymEnv builds the env from keyword arguments: the tiny model goes by its folder
            tiny, tokenizer = tiny_model_and_tokenizer()
            tiny.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            model = folder
        env = make_env(model)
        env.set_seed(0)
        check_env_specs(env)
        rollout = env.rollout(args.steps, break_when_any_done=False)  # (steps,) TensorDict, random actions
        env.close()
    rewards = rollout["next", "reward"].squeeze(-1)  # (steps,)
    episodes = int(rollout["next", "done"].sum())
    print(f"rollout {tuple(rollout.batch_size)}: keys {sorted(map(str, rollout.keys()))}")
    print(f"rewards: {[round(r, 3) for r in rewards.tolist()]}")
    print(f"{episodes} episodes ended, reward sum {rewards.sum().item():+.3f}")
    return float(rewards.sum())


if __name__ == "__main__":
    main()
