"""Shared fixtures of the feedback tests: a board with a scripted completer, an access policy, and a FastAPI test
client that passes the policy as the page does."""

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
def access():
    from textgen_env.feedback import AccessPolicy

    return AccessPolicy(port=8000)


@pytest.fixture
def make_client(access):
    """``make_client(board)``: a test client as the page is, at 127.0.0.1:8000 and sending the token of `access`."""
    testclient = pytest.importorskip("fastapi.testclient", reason="the web app needs textgen-env[feedback]")
    from textgen_env.feedback import create_app
    from textgen_env.feedback.guard import TOKEN_HEADER

    clients = []

    def factory(board: QuestionBoard, **kwargs):
        app = create_app(board, access)
        headers = {TOKEN_HEADER: access.token}
        clients.append(testclient.TestClient(app, base_url="http://127.0.0.1:8000", headers=headers, **kwargs))
        return clients[-1]

    yield factory
    for test_client in clients:
        test_client.close()


@pytest.fixture
def client(board, make_client):
    return make_client(board)
