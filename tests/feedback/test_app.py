"""The feedback web app through FastAPI's test client: questions, answers logged at once, every bad input a 4xx
with a clear message and nothing written."""

from __future__ import annotations

import json
import threading

import pytest

from textgen_env.feedback import QuestionBoard, create_app, read_feedback
from textgen_env.rewards import HumanFeedbackReward, load_preferences


def _lines(board) -> list[dict]:
    return [json.loads(line) for line in board.log_path.read_text().splitlines()]


def test_page_is_served(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert 'id="choose-a"' in response.text and "/api/answer" in response.text


def test_question_stays_open_until_answered(client):
    first = client.get("/api/question").json()["question"]
    assert first["kind"] == "pair" and len(first["completions"]) == 2
    assert client.get("/api/question").json()["question"]["id"] == first["id"]  # a reload shows the same question


def test_pair_answer_is_logged_in_the_preference_format(client, board):
    question = client.get("/api/question").json()["question"]
    response = client.post("/api/answer", json={"question_id": question["id"], "choice": "b"})
    assert response.status_code == 200, response.text
    (preference,) = load_preferences(board.log_path)  # the PairwisePreference reader takes it as is
    assert (preference.completion_a, preference.completion_b) == tuple(question["completions"])
    assert preference.preference == "b" and preference.chosen == question["completions"][1]


def test_rating_answer_is_logged_in_the_human_format(client, board):
    pair = client.get("/api/question").json()["question"]
    client.post("/api/skip", json={"question_id": pair["id"]})
    question = client.get("/api/question").json()["question"]
    assert question["kind"] == "rating" and question["scale"] == [1.0, 5.0]
    assert client.post("/api/answer", json={"question_id": question["id"], "rating": 4}).status_code == 200
    (record,) = _lines(board)
    assert record["rating"] == 4.0 and record["reward"] == pytest.approx(0.5) and record["scale"] == [1.0, 5.0]
    replay = HumanFeedbackReward(log_path=board.log_path, callback=lambda p, c: 1)  # reuses the logged rating
    assert replay([question["prompt"]], [question["completions"][0]], [True]).tolist() == [0.5]
    assert len(read_feedback(board.log_path).ratings) == 1 and board.stats()["skipped"] == 1


BAD_ANSWERS = [
    ({"question_id": "nope", "choice": "a"}, 404, "open question, got 'nope'"),
    ({"question_id": "{id}", "choice": "c"}, 422, "choice"),
    ({"question_id": "{id}", "rating": 3}, 422, "Expected choice 'a', 'b' or 'tie' for a pair question"),
    ({"question_id": "{id}", "choice": "a", "rating": 3}, 422, "exactly one of choice or rating in the body"),
    ({"question_id": "{id}"}, 422, "got neither"),
    ({"question_id": "{id}", "choice": "a", "extra": 1}, 422, "extra: Extra inputs are not permitted"),
    ({"choice": "a"}, 422, "question_id: Field required"),
    ({"question_id": 7, "choice": "a"}, 422, "question_id: Input should be a valid string"),
]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    BAD_ANSWERS,
    ids=["unknown-id", "bad-choice", "rating-for-pair", "both", "neither", "extra-key", "no-id", "id-not-str"],
)
def test_bad_pair_answers_are_rejected_and_nothing_is_written(client, board, body, status, message):
    question = client.get("/api/question").json()["question"]
    body = {k: (question["id"] if v == "{id}" else v) for k, v in body.items()}
    response = client.post("/api/answer", json=body)
    assert response.status_code == status
    assert message in response.json()["error"] and response.json()["error"].startswith("Expected")
    assert _lines(board) == [] and board.next_question().id == question["id"]  # still open


@pytest.mark.parametrize(
    ("rating", "message"),
    [(0, "from 1 to 5"), (6, "from 1 to 5"), (True, "rating"), ("5", "rating"), (None, "neither")],
    ids=["below", "above", "bool", "string", "null"],
)
def test_bad_ratings_are_rejected(client, board, rating, message):
    client.post("/api/skip", json={"question_id": client.get("/api/question").json()["question"]["id"]})
    question = client.get("/api/question").json()["question"]
    response = client.post("/api/answer", json={"question_id": question["id"], "rating": rating})
    assert response.status_code == 422 and message in response.json()["error"]
    assert _lines(board) == []


@pytest.mark.parametrize(
    ("path", "content"),
    [("/api/answer", b"{not json"), ("/api/answer", b"[1, 2]"), ("/api/skip", b""), ("/api/skip", b'{"id": 1}')],
    ids=["answer-not-json", "answer-list", "skip-empty", "skip-wrong-key"],
)
def test_malformed_bodies_get_a_clear_422(client, board, path, content):
    response = client.post(path, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"].startswith("Expected a JSON body {'question_id': str")
    assert _lines(board) == []


def test_answering_twice_is_a_404(client, board):
    question = client.get("/api/question").json()["question"]
    assert client.post("/api/answer", json={"question_id": question["id"], "choice": "a"}).status_code == 200
    again = client.post("/api/answer", json={"question_id": question["id"], "choice": "b"})
    assert again.status_code == 404 and "answered already" in again.json()["error"]
    assert len(_lines(board)) == 1


def test_a_training_job_asks_through_the_page(tmp_path, make_client):
    board = QuestionBoard(tmp_path / "log.jsonl")  # no completer: only the job's questions
    client = make_client(board)
    assert client.get("/api/question").json()["question"] is None
    reward = HumanFeedbackReward(callback=board.ask_rating, log_path=None)  # the board logs the answers
    scores: list = []
    job = threading.Thread(target=lambda: scores.append(reward(["Say hi."], ["Hello!"], [True])))
    job.start()
    for _ in range(500):  # the job's question appears within a few ms
        question = client.get("/api/question").json()["question"]
        if question is not None:
            break
        threading.Event().wait(0.01)
    assert question["source"] == "job" and question["completions"] == ["Hello!"]
    assert client.post("/api/answer", json={"question_id": question["id"], "rating": 5}).status_code == 200
    job.join(timeout=10)
    assert scores[0].tolist() == [1.0] and _lines(board)[0]["source"] == "web-job"


def test_a_skipped_job_question_returns_the_middle_and_is_not_logged(tmp_path):
    board = QuestionBoard(tmp_path / "log.jsonl")
    answers: list = []
    job = threading.Thread(target=lambda: answers.append(board.ask_preference("p", "x", "y")))
    job.start()
    while board.next_question() is None:
        threading.Event().wait(0.01)
    board.skip(board.next_question().id)
    job.join(timeout=10)
    assert answers == ["tie"] and board.log_path.read_text() == ""  # opened at start, nothing written
    with pytest.raises(TimeoutError, match=r"within 0\.01 s"):
        board.ask_rating("p", "x", timeout=0.01)


def test_missing_fastapi_says_what_to_install(monkeypatch, board):
    import sys

    from gymnasium.error import DependencyNotInstalled

    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi now raises ModuleNotFoundError
    with pytest.raises(DependencyNotInstalled, match=r'needs FastAPI.*pip install "textgen-env\[feedback\]"'):
        create_app(board)


def test_model_completer_and_make_board(tmp_path, tiny):
    from textgen_env.feedback import ModelCompleter, make_board

    model, tokenizer = tiny
    completions = ModelCompleter(model, tokenizer, max_new_tokens=5, seed=1)("the movie was", 2)
    assert len(completions) == 2 and all(isinstance(text, str) for text in completions)
    board = make_board(tmp_path / "log.jsonl", model=(model, tokenizer), prompts=["the film"], mode="rating")
    question = board.next_question()
    assert question.kind == "rating" and question.prompt == "the film" and len(question.completions) == 1
    with pytest.raises(ValueError, match="Expected max_new_tokens to be a positive int, got 0"):
        ModelCompleter(model, tokenizer, max_new_tokens=0)
    with pytest.raises(ValueError, match="Expected mode 'pair', 'rating' or 'mixed', got 'both'"):
        QuestionBoard(tmp_path / "log.jsonl", mode="both")
