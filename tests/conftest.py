"""Shared fixtures: the tiny offline model and tokenizer, and an env factory that uses them."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network, and must not wait on it

from collections.abc import Callable
from typing import Any

import pytest
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from textgen_env import TextGenEnv, TextGenVectorEnv
from textgen_env.testing import tiny_model_and_tokenizer


@pytest.fixture(scope="session")
def tiny() -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    return tiny_model_and_tokenizer()


@pytest.fixture
def make_env(tiny) -> Callable[..., TextGenEnv]:
    model, tokenizer = tiny

    def factory(**kwargs: Any) -> TextGenEnv:
        kwargs.setdefault("model", model)
        kwargs.setdefault("tokenizer", tokenizer)
        kwargs.setdefault("max_new_tokens", 6)
        kwargs.setdefault("max_prompt_tokens", 16)
        return TextGenEnv(**kwargs)

    return factory


@pytest.fixture
def make_vec_env(tiny) -> Callable[..., TextGenVectorEnv]:
    model, tokenizer = tiny

    def factory(num_envs: int, **kwargs: Any) -> TextGenVectorEnv:
        kwargs.setdefault("model", model)
        kwargs.setdefault("tokenizer", tokenizer)
        kwargs.setdefault("max_new_tokens", 6)
        kwargs.setdefault("max_prompt_tokens", 16)
        return TextGenVectorEnv(num_envs=num_envs, **kwargs)

    return factory


@pytest.fixture(scope="session")
def tiny_model_dir(tiny, tmp_path_factory) -> str:
    """The tiny model and tokenizer saved with save_pretrained, for code that loads `model=` by path (subprocesses)."""
    folder = tmp_path_factory.mktemp("tiny-model")
    model, tokenizer = tiny
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
