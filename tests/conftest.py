"""Shared fixtures: the tiny offline model and tokenizer, and env factories (TextGen-v0, TextEdit-v0) over it."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network, and must not wait on it

from collections.abc import Callable
from typing import Any

import pytest
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from textgen_env import TextGenEnv, TextGenVectorEnv
from textgen_env.edit import TextEditEnv, TextEditVectorEnv
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


# Feedback logs and reward models (the feedback tests and the reward model's own)
GOOD = ["good", "great", "love", "wonderful", "best", "fun"]
BAD = ["bad", "awful", "hate", "boring", "worst", "dull"]
FILLER = ["the", "movie", "was", "very", "and", "it", "plot", "acting"]
NOUNS = ["movie", "film", "story", "plot", "actor", "music", "ending", "cast", "scene", "book"]


def write_preference_log(path, n: int = 60, seed: int = 0, ratings: int = 0):
    """A log of `n` preferences (the completion with a positive word wins) and `ratings` ratings, over 10 prompts."""
    import random

    from textgen_env.feedback import append_record, preference_record, rating_record

    rng = random.Random(seed)
    for i in range(n):
        prompt = f"the {NOUNS[i % len(NOUNS)]} was"
        good = " ".join([*rng.sample(FILLER, 3), rng.choice(GOOD)])
        bad = " ".join([*rng.sample(FILLER, 3), rng.choice(BAD)])
        first, second, choice = (good, bad, "a") if rng.random() < 0.5 else (bad, good, "b")
        append_record(path, preference_record(prompt, first, second, choice))
    for i in range(ratings):  # two per prompt, a good one (5) and a bad one (1)
        prompt = f"the {NOUNS[(i // 2) % len(NOUNS)]} was"
        word, rating = (rng.choice(GOOD), 5) if i % 2 else (rng.choice(BAD), 1)
        append_record(path, rating_record(prompt, f"it was {word}", rating, (1, 5)))
    return path


@pytest.fixture(scope="session")
def preference_log():
    """`write_preference_log`, for tests that write their own logs."""
    return write_preference_log


@pytest.fixture(scope="session")
def tiny_reward_model(tmp_path_factory, tiny_model_dir):
    """A reward model trained on the tiny trunk from a 60-preference log (and its report)."""
    from agents.reward_model import RewardModelConfig, train_reward_model

    root = tmp_path_factory.mktemp("tiny_rm")
    log = write_preference_log(root / "feedback.jsonl", n=60, ratings=10)
    config = RewardModelConfig(base=tiny_model_dir, epochs=3, learning_rate=1e-3)
    report = train_reward_model(log, root / "rm", config, log=lambda *a: None)
    return root / "rm", report
