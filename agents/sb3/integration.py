"""Building and checking SB3 envs over TextGen-v0, the token-bag extractor, and saving the LM from an SB3 model."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from torch import nn
from transformers import PreTrainedTokenizerBase

from agents.sb3.policy import LMActorCriticPolicy, check_token_spaces
from textgen_env import TextGenConfig, TextGenEnv, load_model, load_tokenizer
from textgen_env.storage import atomic_folder

__all__ = ["ACTOR_CRITIC", "VALUE_BASED", "TokenBagExtractor", "check_sb3_env", "make_sb3_env", "save_lm"]

VALUE_BASED = ("DQN", "QRDQN")
"""SB3 algorithms that learn one Q-value per action from scratch (no use of the LM's prior)."""
ACTOR_CRITIC = ("PPO", "A2C")
"""SB3 algorithms that take an ``ActorCriticPolicy`` such as `LMActorCriticPolicy`."""
SAVE_LM_KIND = "save_lm"
"""The kind in the ``.complete`` marker of a folder `save_lm` wrote (`textgen_env.storage.atomic_folder`)."""


class TokenBagExtractor(BaseFeaturesExtractor):
    """Features of a token observation for SB3's ``MultiInputPolicy``: a bag of embeddings plus the last tokens.

    SB3's default ``CombinedExtractor`` would feed raw token ids to an MLP as floats; this learns an embedding per
    token instead: the masked mean over the text's embeddings concatenated with the embeddings of its last
    `last_tokens` tokens (where order matters most).

    Args:
        observation_space: the env's token observation space.
        embedding_dim: width of the token embeddings.
        last_tokens: how many of the newest tokens get their own slot in the features.
    """

    def __init__(self, observation_space: spaces.Dict, embedding_dim: int = 32, last_tokens: int = 4) -> None:
        if not isinstance(observation_space, spaces.Dict) or "input_ids" not in observation_space.spaces:
            raise ValueError(
                "TokenBagExtractor reads token observations: expected a Dict with 'input_ids' "
                f'(observation_mode="tokens"), got {observation_space}'
            )
        input_ids = cast(spaces.Box, observation_space["input_ids"])  # the token observation's Box
        length = int(input_ids.shape[-1])
        if not 1 <= last_tokens <= length:
            raise ValueError(f"Expected last_tokens in [1, {length}], got {last_tokens}")
        super().__init__(observation_space, features_dim=embedding_dim * (1 + last_tokens))
        self.last_tokens = last_tokens
        self.embedding = nn.Embedding(int(input_ids.high.max()) + 1, embedding_dim)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = observations["input_ids"].round().long()  # (B, L): SB3 hands Box observations over as float
        mask = observations["attention_mask"].float()  # (B, L)
        embedded = self.embedding(ids) * mask[..., None]  # (B, L, E), padding zeroed
        bag = embedded.sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1.0)  # (B, E)
        recent = embedded[:, -self.last_tokens :].flatten(1)  # (B, last_tokens * E)
        return torch.cat([bag, recent], dim=1)


def _algorithm_name(algorithm: str | type | BaseAlgorithm) -> str:
    if isinstance(algorithm, str):
        return algorithm
    return algorithm.__name__ if isinstance(algorithm, type) else type(algorithm).__name__


def _env_config(env: Any) -> TextGenConfig:
    if isinstance(env, gym.vector.VectorEnv):
        raise TypeError(
            "Expected a gymnasium Env or an SB3 VecEnv, got a gymnasium VectorEnv "
            f"({type(env).__name__}), which SB3 cannot step; build the envs with agents.sb3.make_sb3_env(num_envs, ...)"
        )
    config = env.get_attr("config")[0] if isinstance(env, VecEnv) else env.get_wrapper_attr("config")
    if not isinstance(config, TextGenConfig):
        raise TypeError(f"Expected a TextGen env (with a TextGenConfig), got {type(env).__name__}")
    return config


def check_sb3_env(
    env: gym.Env | VecEnv,
    algorithm: str | type | BaseAlgorithm,
    policy: str | type = "MlpPolicy",
) -> None:
    """Check that a TextGen env's modes suit an SB3 algorithm and policy; raise or warn with the fix.

    Args:
        env: a `TextGenEnv` (possibly wrapped) or an SB3 VecEnv of them.
        algorithm: the SB3 algorithm (class, instance or name, e.g. ``"DQN"``).
        policy: the policy (class or SB3 name such as ``"MlpPolicy"``).

    Raises:
        ValueError: `LMActorCriticPolicy` without token observations and vocab actions, or ``MlpPolicy`` on the
            Dict token observation.
        TypeError: `LMActorCriticPolicy` with an algorithm that is not actor-critic, or an env SB3 cannot step.

    Warns:
        UserWarning: DQN on the full-vocabulary action space (suggests ``action_mode="top_k"``); MaskablePPO in
            vocab mode without ``mask_top_k``/``mask_top_p`` (every token allowed).
    """
    config = _env_config(env)
    name = _algorithm_name(algorithm)
    spaces_of = (env.observation_space, env.action_space)
    if policy is LMActorCriticPolicy or policy == "LMActorCriticPolicy":
        if name not in ACTOR_CRITIC:
            raise TypeError(
                f"Expected an actor-critic algorithm {list(ACTOR_CRITIC)} for LMActorCriticPolicy, got {name}"
            )
        if config.observation_mode != "tokens" or config.action_mode != "vocab":
            raise ValueError(
                'LMActorCriticPolicy needs observation_mode="tokens" and action_mode="vocab", got '
                f"observation_mode={config.observation_mode!r}, action_mode={config.action_mode!r}"
            )
        check_token_spaces(*spaces_of, int(cast(spaces.Discrete, spaces_of[1]).n))  # action_mode='vocab'
    elif policy == "MlpPolicy" and config.observation_mode == "tokens":
        raise ValueError(
            'MlpPolicy needs a Box observation: use observation_mode="hidden" (the env model\'s hidden state), or '
            'MultiInputPolicy with policy_kwargs={"features_extractor_class": TokenBagExtractor} for tokens, got '
            'observation_mode="tokens"'
        )
    if name in VALUE_BASED and config.action_mode == "vocab":
        warnings.warn(
            f"{name} learns one Q-value per action, from scratch, and explores uniformly: the full-vocabulary action "
            f'space {env.action_space} is far too large for it. Use action_mode="top_k" (Discrete(top_k), action i '
            "= the env model's i-th most likely token), or train the LM with PPO and LMActorCriticPolicy.",
            UserWarning,
            stacklevel=2,
        )
    if (
        name == "MaskablePPO"
        and config.action_mode == "vocab"
        and config.mask_top_k is None
        and config.mask_top_p is None
    ):
        warnings.warn(
            'MaskablePPO in action_mode="vocab" without mask_top_k or mask_top_p: action_masks() allows every token; '
            "set mask_top_k (e.g. 20) or mask_top_p (e.g. 0.9) on the env",
            UserWarning,
            stacklevel=2,
        )


def make_sb3_env(
    num_envs: int = 1,
    *,
    algorithm: str | type | None = None,
    policy: str | type = "MlpPolicy",
    seed: int | None = None,
    monitor: bool = True,
    **env_kwargs: Any,
) -> VecEnv:
    """N `TextGenEnv` in an SB3 ``DummyVecEnv`` sharing one tokenizer and model, optionally checked for an algorithm.

    SB3 cannot step gymnasium's vector envs (``TextGenVectorEnv``); this builds N single envs instead, each wrapped
    in SB3's ``Monitor`` (so ``rollout/ep_rew_mean`` is logged). A model or tokenizer given by name is loaded once and
    shared. With `algorithm`, `check_sb3_env` runs on the result.

    Args:
        num_envs: number of envs (the policy's KV cache has one slot per env).
        algorithm: SB3 algorithm (class or name) to check the env against; None skips the check.
        policy: the policy that `algorithm` will use, for the check.
        seed: seeds env i with ``seed + i`` at the first reset.
        monitor: wrap each env in SB3's ``Monitor``.
        **env_kwargs: `TextGenEnv` arguments.
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"Expected num_envs to be an int >= 1, got {num_envs!r}")
    config = TextGenConfig(**env_kwargs)  # validate once, before building anything
    model = env_kwargs.get("model")
    if config.needs_model and not isinstance(model, torch.nn.Module):
        env_kwargs["model"], env_kwargs["tokenizer"] = load_model(
            model, tokenizer=env_kwargs.get("tokenizer"), device=config.device, dtype=config.dtype
        )
    elif env_kwargs.get("tokenizer") is None and not isinstance(model, torch.nn.Module):
        env_kwargs["tokenizer"] = load_tokenizer(model)

    def factory() -> gym.Env:
        env = TextGenEnv(**env_kwargs)
        return Monitor(env) if monitor else env

    makers: list[Callable[[], gym.Env]] = [factory] * num_envs
    vec_env = DummyVecEnv(makers)
    if seed is not None:
        vec_env.seed(seed)
    if algorithm is not None:
        check_sb3_env(vec_env, algorithm, policy)
    return vec_env


def save_lm(
    algorithm: BaseAlgorithm,
    folder: str | os.PathLike[str],
    *,
    tokenizer: PreTrainedTokenizerBase | None = None,
    value_head: bool = True,
    overwrite: bool = False,
) -> Path:
    """Save the LM of an SB3 model trained with `LMActorCriticPolicy` in Hugging Face format.

    Writes ``save_pretrained`` files of the LM and its tokenizer (`tokenizer`, else the policy's) to `folder` (load
    them with `textgen_env.load_model(folder)` or ``TextGenEnv(model=folder)``) and, with `value_head`, the value
    head's state_dict as ``value_head.pt``. Returns the folder. An existing `folder` that is not one `save_lm` wrote
    (a user's folder, another kind of output) is refused with FileExistsError before anything is written, unless
    `overwrite` is True.
    """
    policy = algorithm.policy
    if not isinstance(policy, LMActorCriticPolicy):
        raise TypeError(f"Expected an SB3 model with an LMActorCriticPolicy, got a {type(policy).__name__}")
    tokenizer = tokenizer if tokenizer is not None else policy.tokenizer
    if tokenizer is None:
        raise ValueError(
            "Expected tokenizer= (the policy was built from a model instance alone, without one), got None; pass "
            "the env's: save_lm(ppo, folder, tokenizer=env.get_attr('tokenizer')[0])"
        )
    folder = Path(folder)
    # a kill leaves the old folder or the new one; a folder save_lm did not write is refused before the block runs
    with atomic_folder(folder, name=SAVE_LM_KIND, overwrite=overwrite) as staging:
        policy.lm.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if value_head:
            torch.save(policy.value_net.state_dict(), staging / "value_head.pt")
    return folder
