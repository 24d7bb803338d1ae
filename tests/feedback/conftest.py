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
