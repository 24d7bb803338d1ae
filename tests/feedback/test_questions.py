"""QuestionBoard without the web app: the hand-off of a job's question at its deadline (an answer is either logged
and given to the job, or refused; never logged while the job times out), texts that UTF-8 cannot carry, the scale,
and a log that cannot be written failing at start."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field

import pytest

from textgen_env.feedback import QuestionBoard, UnknownQuestion, append_record, questions
from textgen_env.feedback.questions import short_repr


def _records(board) -> list[dict]:
    return [json.loads(line) for line in board.log_path.read_text().splitlines()]


def _wait_for_question(board):
    while (question := board.next_question()) is None:
        time.sleep(0.001)
    return question


def test_an_answer_that_lands_as_the_deadline_passes_reaches_the_job(tmp_path, monkeypatch):
    """The race itself, made certain: the job's wait times out, and the answer is logged before the job reacts."""
    board = QuestionBoard(tmp_path / "log.jsonl")

    class LateEvent(threading.Event):
        def wait(self, timeout=None):
            super().wait(timeout)  # times out: nobody answers during the wait
            board.answer(board.next_question().id, rating=4)  # ...and then the person's answer lands
            return False

    @dataclass
    class LatePending(questions._Pending):
        done: threading.Event = field(default_factory=LateEvent)

    monkeypatch.setattr(questions, "_Pending", LatePending)
    assert board.ask_rating("p", "c", timeout=0.01) == 4.0  # the logged answer, not a TimeoutError
    assert [r["rating"] for r in _records(board)] == [4.0]


@pytest.mark.timeout(60)
def test_the_hand_off_at_the_deadline_never_loses_an_answer(tmp_path):
    """Hammer the deadline: each answer lands at a random moment around it. Every logged answer reached its job;
    every refused answer belongs to a job that timed out; nothing else happens."""
    board = QuestionBoard(tmp_path / "log.jsonl")
    rng = random.Random(0)
    timeout = 0.02
    outcomes = {"answered": 0, "timed-out": 0}
    for trial in range(80):
        result: dict = {}

        def job(result=result, completion=f"c{trial}"):
            try:
                result["rating"] = board.ask_rating("p", completion, timeout=timeout)
            except TimeoutError:
                result["timeout"] = True

        thread = threading.Thread(target=job)
        thread.start()
        question = _wait_for_question(board)
        time.sleep(rng.uniform(0.5, 1.5) * timeout)
        try:
            board.answer(question.id, rating=5)
            accepted = True
        except UnknownQuestion:
            accepted = False
        thread.join(timeout=5)
        logged = [r for r in _records(board) if r["completion"] == f"c{trial}"]
        if accepted:
            assert result == {"rating": 5.0} and len(logged) == 1, (trial, result)
            outcomes["answered"] += 1
        else:
            assert result == {"timeout": True} and logged == [], (trial, result)
            outcomes["timed-out"] += 1
    assert board.next_question() is None and board.stats()["job_waiting"] == 0
    assert outcomes["answered"] > 0 and outcomes["timed-out"] > 0  # both sides of the deadline were hit


def test_a_late_answer_after_a_timeout_is_refused_and_not_logged(tmp_path):
    board = QuestionBoard(tmp_path / "log.jsonl")
    errors: list = []

    def job():
        try:
            board.ask_rating("p", "c", timeout=0.05)
        except TimeoutError as error:
            errors.append(error)

    thread = threading.Thread(target=job)
    thread.start()
    question = _wait_for_question(board)
    thread.join(timeout=5)
    assert len(errors) == 1
    with pytest.raises(UnknownQuestion, match="its job stopped waiting"):
        board.answer(question.id, rating=3)
    assert board.log_path.read_text() == ""


@pytest.mark.parametrize(
    ("ask", "message"),
    [
        (
            lambda b: b.ask_rating("bad \ud800 prompt", "c"),
            r"prompt .* lone surrogate '\\ud800' at character 4",
        ),
        (
            lambda b: b.ask_preference("p", "ok", "x\udfff"),
            r"completion .* surrogate '\\udfff' at character 1",
        ),
    ],
    ids=["prompt", "completion"],
)
def test_a_job_question_utf8_cannot_carry_is_refused_at_once(tmp_path, ask, message):
    board = QuestionBoard(tmp_path / "log.jsonl")
    with pytest.raises(ValueError, match=message):
        ask(board)  # at once: no timeout given, the old board waited forever for a page that could not show it
    assert board.next_question() is None


def test_a_completer_text_utf8_cannot_carry_is_repaired(tmp_path, make_client):
    board = QuestionBoard(tmp_path / "log.jsonl", completer=lambda p, n: ["broken \udc80 text"] * n, prompts=["p"])
    question = make_client(board).get("/api/question").json()["question"]  # the page can show it
    assert question["completions"] == ["broken \ufffd text"] * 2


@pytest.mark.parametrize(
    "scale",
    [(1, float("inf")), (float("-inf"), 5), (float("nan"), 5), (True, 5), (5, 1), (1,), "15"],
    ids=["inf", "minus-inf", "nan", "bool", "reversed", "one", "string"],
)
def test_the_scale_must_be_finite(tmp_path, scale):
    with pytest.raises(ValueError, match=r"Expected scale to be finite numbers \(low, high\) with low < high"):
        QuestionBoard(tmp_path / "log.jsonl", scale=scale)


def test_no_record_is_written_with_nan_or_infinity(tmp_path):
    log = tmp_path / "log.jsonl"
    for value in (float("nan"), float("inf")):
        with pytest.raises(
            ValueError, match=r"Expected a record of finite numbers for .*, got one with NaN or Infinity"
        ):
            append_record(log, {"prompt": "p", "completion": "c", "rating": 3, "reward": value})
    assert not log.exists()


@pytest.mark.parametrize(
    ("make_path", "reason"),
    [
        (lambda tmp: ((tmp / "folder").mkdir(), tmp / "folder")[1], "Is a directory"),
        (lambda tmp: ((tmp / "file").write_text(""), tmp / "file" / "log.jsonl")[1], "Not a directory"),
    ],
    ids=["log-is-a-folder", "parent-is-a-file"],
)
def test_a_log_that_cannot_be_written_fails_at_start(tmp_path, make_path, reason):
    path = make_path(tmp_path)
    with pytest.raises(OSError, match=rf"Expected a feedback log that can be appended to, got '{path}': {reason}"):
        QuestionBoard(path)


def test_a_symlinked_log_fails_at_start(tmp_path):
    (tmp_path / "elsewhere.txt").write_text("")
    (tmp_path / "log.jsonl").symlink_to(tmp_path / "elsewhere.txt")
    with pytest.raises(OSError, match=r"Expected the feedback log '.*log\.jsonl' to be a regular file, got a symbolic"):
        QuestionBoard(tmp_path / "log.jsonl")


def test_short_repr_cuts_what_a_client_sent():
    assert short_repr("x" * 10) == "'xxxxxxxxxx'"
    assert short_repr("x" * 1000).endswith("... (1002 characters)") and len(short_repr("x" * 1000)) < 90
    assert short_repr(10**5000) == f"an int of {(10**5000).bit_length()} bits"
