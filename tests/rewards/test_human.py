"""Human feedback: scripted terminal answers, callbacks, the crash-safe JSONL log, replay and pairwise preferences."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime

import numpy as np
import pytest

from textgen_env.rewards import (
    HumanFeedbackReward,
    PairwisePreference,
    ReplayReward,
    load_preferences,
    load_ratings,
    make_reward,
)
from textgen_env.rewards.human import append_jsonl, read_jsonl


class Terminal:
    """Scripted answers for `input_fn`; everything shown goes to `shown`."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.questions: list[str] = []
        self.shown: list[str] = []

    def input(self, question: str) -> str:
        self.questions.append(question)
        if not self.answers:
            raise AssertionError(f"asked once too often: {question!r}")
        return self.answers.pop(0)

    def print(self, *parts: object) -> None:
        self.shown.append(" ".join(map(str, parts)))


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


PROMPTS = ["Tell a joke.", "Describe the sea.", "Say hi."]
COMPLETIONS = ["Why did the chicken cross the road?", "Blue and endless.", "Hel"]


def test_terminal_ratings_reask_until_valid_and_log(tmp_path):
    terminal = Terminal("7", "great", "4", "1")
    log = tmp_path / "ratings.jsonl"
    reward = HumanFeedbackReward(log_path=log, input_fn=terminal.input, print_fn=terminal.print)
    scores = reward(PROMPTS, COMPLETIONS, [True, True, False])
    np.testing.assert_allclose(scores, [0.5, -1.0, 0.0])  # 4 on 1-5 -> 0.5, 1 -> -1, unfinished -> 0 unasked
    assert terminal.answers == [] and len(terminal.questions) == 4
    assert terminal.questions[0] == "Rating (1 to 5, 5 = best): "
    assert "Expected a number from 1 to 5, got '7'; try again." in terminal.shown
    assert "Expected a number from 1 to 5, got 'great'; try again." in terminal.shown
    assert "Why did the chicken cross the road?" in terminal.shown[0] and "Tell a joke." in terminal.shown[0]
    assert "[1/2]" in terminal.shown[0]
    records = lines(log)
    assert [(r["prompt"], r["completion"], r["rating"], r["reward"]) for r in records] == [
        (PROMPTS[0], COMPLETIONS[0], 4.0, 0.5),
        (PROMPTS[1], COMPLETIONS[1], 1.0, -1.0),
    ]
    assert all(r["scale"] == [1.0, 5.0] and datetime.fromisoformat(r["timestamp"]).tzinfo for r in records)


def test_each_record_is_fsynced_before_the_next_question(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    log = tmp_path / "ratings.jsonl"

    calls = []

    def callback(prompt, completion):
        written = len(read_jsonl(log)) if log.exists() else 0
        assert written == len(calls) and len(synced) >= written  # every earlier answer is on disk already
        calls.append(completion)
        return 3

    HumanFeedbackReward(callback=callback, log_path=log)(PROMPTS, COMPLETIONS, [True] * 3)
    assert len(lines(log)) == 3 and len(synced) >= 3


def test_callback_mode_with_a_custom_scale(tmp_path):
    seen = []

    def callback(prompt, completion):
        seen.append((prompt, completion))
        return {"Blue and endless.": 10}.get(completion, 0)

    reward = make_reward("human", {"callback": callback, "log_path": tmp_path / "log.jsonl", "scale": (0, 10)})
    scores = reward(PROMPTS, COMPLETIONS, [True, True, True])
    np.testing.assert_allclose(scores, [-1.0, 1.0, -1.0])
    assert seen == list(zip(PROMPTS, COMPLETIONS))
    assert [r["rating"] for r in lines(tmp_path / "log.jsonl")] == [0, 10, 0]


def test_a_crash_keeps_the_earlier_records(tmp_path):
    log = tmp_path / "ratings.jsonl"
    calls = []

    def callback(prompt, completion):
        calls.append(completion)
        if len(calls) == 3:
            raise RuntimeError("the front end died")
        return 5

    with pytest.raises(RuntimeError, match="the front end died"):
        HumanFeedbackReward(callback=callback, log_path=log)(PROMPTS, COMPLETIONS, [True] * 3)
    assert [r["completion"] for r in lines(log)] == COMPLETIONS[:2]
    assert load_ratings(log) == {(PROMPTS[0], COMPLETIONS[0]): 1.0, (PROMPTS[1], COMPLETIONS[1]): 1.0}
    # Resuming: a new reward on the same log asks only for the pair that was lost.
    terminal = Terminal("2")
    resumed = HumanFeedbackReward(log_path=log, input_fn=terminal.input, print_fn=terminal.print)
    np.testing.assert_allclose(resumed(PROMPTS, COMPLETIONS, [True] * 3), [1.0, 1.0, -0.5])
    assert len(terminal.questions) == 1 and len(lines(log)) == 3


@pytest.mark.slow
def test_a_killed_process_keeps_the_earlier_records(tmp_path):
    log = tmp_path / "ratings.jsonl"
    code = f"""
import os
from textgen_env.rewards import HumanFeedbackReward
calls = []
def callback(prompt, completion):
    calls.append(completion)
    if len(calls) == 3:
        os._exit(3)  # dies at once: no exception handling, no closing of files, no interpreter shutdown
    return 4
HumanFeedbackReward(callback=callback, log_path={str(log)!r})({PROMPTS!r}, {COMPLETIONS!r}, [True] * 3)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr[-2000:]
    assert [(r["completion"], r["rating"]) for r in lines(log)] == [(COMPLETIONS[0], 4), (COMPLETIONS[1], 4)]


def test_known_pairs_are_not_asked_twice_unless_told(tmp_path):
    terminal = Terminal("5", "1")
    reward = HumanFeedbackReward(log_path=None, input_fn=terminal.input, print_fn=terminal.print)
    assert reward(["p", "p"], ["same", "same"], [True, True]).tolist() == [1.0, 1.0]
    again = HumanFeedbackReward(log_path=None, input_fn=terminal.input, print_fn=terminal.print, reuse_ratings=False)
    assert again(["p"], ["same"], [True]).tolist() == [-1.0]
    assert terminal.answers == []


def test_a_record_cut_short_is_skipped_and_the_next_one_stays_readable(tmp_path):
    log = tmp_path / "ratings.jsonl"
    append_jsonl(log, {"prompt": "p", "completion": "c", "rating": 5, "reward": 1.0})
    with open(log, "ab") as file:
        file.write('{"prompt": "p2", "completion": "caf\u00e9'.encode()[:-1])  # died mid-write, inside the "\u00e9"
    append_jsonl(log, {"prompt": "p3", "completion": "c3", "rating": 1, "reward": -1.0})
    with pytest.warns(UserWarning, match=r"Skipped lines \[2\] of .*ratings.jsonl.*cut short"):
        ratings = load_ratings(log)
    assert ratings == {("p", "c"): 1.0, ("p3", "c3"): -1.0}


def test_a_cut_line_ending_in_a_brace_is_skipped_by_the_replay_readers(tmp_path):
    log = tmp_path / "ratings.jsonl"
    log.write_text(
        '{"prompt": "p", "completion": "a}\n'  # cut inside a string that held a "}"
        '{"prompt": "p", "completion": "c", "rating": 5, "reward": 1.0}\n'
        '{"prompt": "q", "completion_a": "x", "completion_b": {"y": 1}\n'  # cut after a nested object
    )
    with pytest.warns(UserWarning, match=r"Skipped lines \[1, 3\] of .*ratings.jsonl"):
        assert load_ratings(log) == {("p", "c"): 1.0}
    with pytest.warns(UserWarning, match=r"Skipped lines \[1, 3\]"):
        assert load_preferences(log) == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": "p", "completion": "c", "reward": NaN}', r"finite numbers on line 2 of .*got NaN"),
        ('{"prompt": "p", "completion": "c", "reward": -Infinity}', r"finite numbers on line 2 of .*got -Infinity"),
        ('{"prompt": "p", "completion": "c", "reward": 1e999}', r"Expected reward to be a finite number in line 2"),
        ('{"prompt": "p", "completion": "c", "reward": "high"}', r"Expected reward to be a finite number in line 2"),
        ('{"prompt": "p", "completion": "c", "reward": true}', r"Expected reward to be a finite number in line 2"),
        ('{"prompt": 1, "completion": "c", "reward": 0.5}', r"Expected prompt and completion to be strings in line 2"),
        ('{"r": ' + "[" * 100_000 + "]" * 100_000 + "}", r"Expected a JSON record on line 2 of .*nested too deeply"),
        ('{"r": ' + "[" * 100_000, r"Expected a JSON record on line 2 of .*nested too deeply"),
        ("[1, 2]", r"Expected a JSON object on line 2"),
    ],
    ids=["nan", "minus-infinity", "overflow", "string", "bool", "prompt-not-text", "nesting-bomb", "open-bomb", "list"],
)
def test_replay_readers_refuse_bad_lines_by_number(tmp_path, line, message):
    log = tmp_path / "ratings.jsonl"
    append_jsonl(log, {"prompt": "p", "completion": "ok", "rating": 5, "reward": 1.0})
    with open(log, "a") as file:
        file.write(line + "\n")
    with pytest.raises(ValueError, match=message):
        ReplayReward(log)


def test_no_log_record_is_written_with_nan(tmp_path):
    log = tmp_path / "ratings.jsonl"
    with pytest.raises(ValueError, match=r"Expected a record of finite numbers for .*, got one with NaN or Infinity"):
        append_jsonl(log, {"prompt": "p", "completion": "c", "reward": float("nan")})
    with pytest.raises(ValueError, match=r"Expected a record of text that encodes to UTF-8 .*lone surrogate"):
        append_jsonl(log, {"prompt": "p\ud800", "completion": "c", "reward": 0.0})
    assert not log.exists()


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        ("5", TypeError, "Expected the callback's rating to be a number from 1 to 5, got '5'"),
        (6, ValueError, "Expected the callback's rating to be a number from 1 to 5, got 6"),
        (float("nan"), ValueError, "got nan"),
        (True, TypeError, "got True"),
    ],
    ids=["string", "too-high", "nan", "bool"],
)
def test_bad_callback_ratings(tmp_path, answer, error, message):
    reward = HumanFeedbackReward(callback=lambda p, c: answer, log_path=tmp_path / "log.jsonl")
    with pytest.raises(error, match=message):
        reward(["p"], ["c"], [True])
    assert not (tmp_path / "log.jsonl").exists()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"scale": (5, 1)}, ValueError, r"Expected scale to be a pair of finite numbers \(low, high\) with low < high"),
        ({"scale": (1, 2, 3)}, ValueError, r"got \(1, 2, 3\)"),
        ({"callback": "rate"}, TypeError, "Expected callback to be callable, got str"),
        ({"input_fn": None}, TypeError, "Expected input_fn to be callable, got NoneType"),
        ({"log_path": 3}, TypeError, "Expected log_path to be a path or None, got int"),
    ],
    ids=["reversed-scale", "three-scale", "callback", "input-fn", "log-path"],
)
def test_human_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        HumanFeedbackReward(**kwargs)


def test_replay_returns_logged_ratings(tmp_path):
    log = tmp_path / "ratings.jsonl"
    HumanFeedbackReward(callback=lambda p, c: {"good": 5, "bad": 1}[c], log_path=log)(
        ["p", "p", "q"], ["good", "bad", "good"], [True, True, True]
    )
    HumanFeedbackReward(callback=lambda p, c: 3, log_path=log, reuse_ratings=False)(["q"], ["good"], [True])
    replay = make_reward("human-replay", {"log_path": log, "default": -0.25})
    scores = replay(["p", "p", "q", "p", "p"], ["good", "bad", "good", "new", "good"], [True, True, True, True, False])
    np.testing.assert_allclose(scores, [1.0, -1.0, 0.0, -0.25, 0.0])  # q re-rated 3 -> 0; unknown; unfinished
    assert replay.misses == 1


def test_replay_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Expected log_path to be a ratings log .* which is not a file"):
        ReplayReward(tmp_path / "missing.jsonl")
    log = tmp_path / "log.jsonl"
    append_jsonl(log, {"prompt": "p", "completion": "c"})
    with pytest.raises(
        ValueError, match=r"with keys \['prompt', 'completion', 'reward'\], got one without \['reward'\]"
    ):
        ReplayReward(log)
    with pytest.raises(ValueError, match="Expected default to be a finite number, got inf"):
        ReplayReward(log, default=float("inf"))


def test_pairwise_terminal_reasks_and_logs(tmp_path):
    terminal = Terminal("c", "A", "tie", "  b ")
    log = tmp_path / "prefs.jsonl"
    judge = PairwisePreference(log_path=log, input_fn=terminal.input, print_fn=terminal.print)
    assert judge.compare("Say hi.", "Go away.", "Hello there!") == "a"
    assert judge.compare("Say hi.", "Hi!", "Hello!") == "tie"
    assert judge.compare("Say hi.", "Bye.", "Hey!") == "b"
    assert "Expected 'a', 'b' or 'tie', got 'c'; try again." in terminal.shown
    assert "[A]\nGo away." in terminal.shown[0] and "[B]\nHello there!" in terminal.shown[0]
    records = lines(log)
    assert [r["preference"] for r in records] == ["a", "tie", "b"]
    assert set(records[0]) == {"prompt", "completion_a", "completion_b", "preference", "timestamp"}
    preferences = load_preferences(log)
    assert [(p.chosen, p.rejected) for p in preferences] == [
        ("Go away.", "Hello there!"),
        (None, None),
        ("Hey!", "Bye."),
    ]


def test_pairwise_callback_and_crash(tmp_path):
    log = tmp_path / "prefs.jsonl"
    answers = iter(["b", "a"])

    def callback(prompt, a, b):
        answer = next(answers, None)
        if answer is None:
            raise KeyboardInterrupt
        return answer

    judge = PairwisePreference(callback=callback, log_path=log)
    assert [judge.compare("p", "x", "y"), judge.compare("p", "y", "z")] == ["b", "a"]
    with pytest.raises(KeyboardInterrupt):
        judge.compare("p", "z", "w")
    assert [(p.chosen, p.rejected) for p in load_preferences(log)] == [("y", "x"), ("y", "z")]
    with pytest.raises(ValueError, match="Expected the callback to return 'a', 'b' or 'tie', got 'A'"):
        PairwisePreference(callback=lambda p, a, b: "A", log_path=log).compare("p", "x", "y")
    assert len(load_preferences(log)) == 2


def test_load_preferences_rejects_a_bad_choice(tmp_path):
    log = tmp_path / "prefs.jsonl"
    append_jsonl(log, {"prompt": "p", "completion_a": "a", "completion_b": "b", "preference": "both"})
    with pytest.raises(ValueError, match=r"Expected preference 'a', 'b' or 'tie' in .*, got 'both'"):
        load_preferences(log)


def test_logs_with_both_kinds_of_answer_are_read_by_both_readers(tmp_path):
    from textgen_env.rewards.human import append_jsonl, load_preferences, load_ratings

    log = tmp_path / "feedback.jsonl"
    append_jsonl(log, {"prompt": "p", "completion": "c", "reward": 0.5, "rating": 4})
    append_jsonl(log, {"prompt": "p", "completion_a": "x", "completion_b": "y", "preference": "a"})
    assert load_ratings(log) == {("p", "c"): 0.5}
    assert [p.preference for p in load_preferences(log)] == ["a"]
