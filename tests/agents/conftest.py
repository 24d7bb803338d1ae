"""Fixtures for agent tests: a simple keyword task on the tiny model."""

from __future__ import annotations

import pytest

from agents.sb3 import make_sb3_env
from textgen_env import TextGenVectorEnv

KEYWORD_TASK = dict(
    reward="keyword",
    reward_kwargs={"keywords": ["great"]},
    max_new_tokens=4,
    prompts=["the movie was", "i think it was"],
)
"""Reward 1 when the 4-token completion contains 'great', after one of two prompts."""


@pytest.fixture
def keyword_env(tiny):
    """8 slots, 4-token completions, reward 1 when the completion contains 'great'."""
    model, tokenizer = tiny

    def factory(num_envs: int = 8, **kwargs) -> TextGenVectorEnv:
        settings = dict(model=model, tokenizer=tokenizer, **KEYWORD_TASK)
        settings.update(kwargs)
        return TextGenVectorEnv(num_envs=num_envs, **settings)

    return factory


@pytest.fixture
def sb3_env(tiny):
    """SB3 VecEnv of tiny-model envs: reward 1 when the 4-token completion contains 'great'."""
    model, tokenizer = tiny

    def factory(num_envs: int = 8, **kwargs):
        settings = dict(model=model, tokenizer=tokenizer, max_prompt_tokens=8, seed=0, **KEYWORD_TASK)
        settings.update(kwargs)
        return make_sb3_env(num_envs, **settings)

    return factory
