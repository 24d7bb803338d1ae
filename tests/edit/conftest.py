"""Fixtures for the TextEdit-v0 tests: env factories over the tiny offline model (`tiny` from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from textgen_env.edit import TextEditEnv, TextEditVectorEnv

DRAFTS = [
    "the movie was very very good , and the music was great . i liked it .",
    "the story was long and the ending was sad . the cast was good .",
    "i watched the film . it was not bad , but the plot was very slow .",
]


@pytest.fixture
def make_edit_env(tiny) -> Callable[..., TextEditEnv]:
    model, tokenizer = tiny

    def factory(**kwargs: Any) -> TextEditEnv:
        kwargs.setdefault("model", model)
        kwargs.setdefault("tokenizer", tokenizer)
        kwargs.setdefault("drafts", DRAFTS)
        kwargs.setdefault("max_edits", 4)
        kwargs.setdefault("num_candidates", 5)
        return TextEditEnv(**kwargs)

    return factory


@pytest.fixture
def make_edit_vec_env(tiny) -> Callable[..., TextEditVectorEnv]:
    model, tokenizer = tiny

    def factory(num_envs: int, **kwargs: Any) -> TextEditVectorEnv:
        kwargs.setdefault("model", model)
        kwargs.setdefault("tokenizer", tokenizer)
        kwargs.setdefault("drafts", DRAFTS)
        kwargs.setdefault("max_edits", 4)
        kwargs.setdefault("num_candidates", 5)
        return TextEditVectorEnv(num_envs=num_envs, **kwargs)

    return factory
