"""Shared fixtures of the feedback tests: a board with a scripted completer and its FastAPI test client."""

from __future__ import annotations

import itertools

import pytest

from textgen_env.feedback import QuestionBoard

PROMPTS = ["The movie was", "I thought the film", "The ending"]


class ScriptedCompleter:
    """Completions ``"completion 0"``, ``"completion 1"``, ... in order: predictable questions, no model."""

    def __init__(self) -> None:
        self.counter = itertools.count()

    def __call__(self, prompt: str, n: int) -> list[str]:
        return [f"completion {next(self.counter)}" for _ in range(n)]


@pytest.fixture
def board(tmp_path) -> QuestionBoard:
    return QuestionBoard(tmp_path / "feedback.jsonl", completer=ScriptedCompleter(), prompts=PROMPTS, mode="mixed")


@pytest.fixture
def client(board):
    testclient = pytest.importorskip("fastapi.testclient", reason="the web app needs textgen-env[feedback]")
    from textgen_env.feedback import create_app

    with testclient.TestClient(create_app(board)) as test_client:
        yield test_client


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
def tiny_trunk(tmp_path_factory, tiny):
    """The tiny GPT-2 and its tokenizer saved as a model folder: the trunk of tiny reward models."""
    folder = tmp_path_factory.mktemp("tiny_trunk")
    model, tokenizer = tiny
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_reward_model(tmp_path_factory, tiny_trunk):
    """A reward model trained on the tiny trunk from a 60-preference log (and its report)."""
    from agents.reward_model import RewardModelConfig, train_reward_model

    root = tmp_path_factory.mktemp("tiny_rm")
    log = write_preference_log(root / "feedback.jsonl", n=60, ratings=10)
    config = RewardModelConfig(base=str(tiny_trunk), epochs=3, learning_rate=1e-3)
    report = train_reward_model(log, root / "rm", config, log=lambda *a: None)
    return root / "rm", report
