"""The feedback log: records in the formats of PairwisePreference and the human reward, and the strict reader's
errors (empty or corrupt log, naming the line) and its one tolerance (a record cut short by a crash)."""

from __future__ import annotations

import json

import pytest

from textgen_env.feedback import append_record, preference_record, rating_record, read_feedback
from textgen_env.rewards import load_preferences, load_ratings


def test_records_read_back_and_match_the_existing_readers(tmp_path):
    log = tmp_path / "log.jsonl"
    append_record(log, preference_record("p", "x", "y", "a", source="web"))
    append_record(log, rating_record("p", "x", 4, (1, 5)))
    feedback = read_feedback(log)
    assert len(feedback) == 2 and feedback.preferences[0].chosen == "x" and feedback.ratings[0].rating == 4.0
    ratings_only = tmp_path / "ratings.jsonl"
    append_record(ratings_only, rating_record("p", "x", 4, (1, 5)))
    assert load_ratings(ratings_only) == {("p", "x"): 0.5}  # the human reward's own reader takes the records


@pytest.mark.parametrize(
    "cut",
    [
        '{"prompt": "p", "completion_a": "x", "compl',
        '{"prompt": "p", "completion_a": "a}',  # cut inside a string that happened to hold a "}"
        '{"prompt": "p", "completion_a": {"x": 1}',  # cut after a nested object: ends in "}"
    ],
    ids=["open-end", "ends-in-brace-in-string", "ends-in-nested-brace"],
)
@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_a_cut_line_is_skipped_wherever_it_is_whatever_it_ends_with(tmp_path, cut, position):
    log = tmp_path / "log.jsonl"
    good = [preference_record(p, "x", "y", "a") for p in ("p", "q")]
    lines = [json.dumps(record) for record in good]
    index = {"first": 0, "middle": 1, "last": 2}[position]
    lines.insert(index, cut)
    log.write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match=rf"Skipped lines \[{index + 1}\] of .*log.jsonl.*cut short"):
        feedback = read_feedback(log)
    assert [p.prompt for p in feedback.preferences] == ["p", "q"] and feedback.skipped_lines == (index + 1,)


def test_a_record_cut_short_is_skipped_with_a_warning(tmp_path):
    log = tmp_path / "log.jsonl"
    append_record(log, preference_record("p", "x", "y", "b"))
    with open(log, "a") as file:
        file.write('{"prompt": "p", "completion_a": "x", "compl')  # a crash mid-write
    append_record(log, preference_record("q", "x", "y", "a"))  # a later answer lands on its own line
    with pytest.warns(UserWarning, match=r"Skipped lines \[2\] of .*log.jsonl.*cut short"):
        feedback = read_feedback(log)
    assert [p.prompt for p in feedback.preferences] == ["p", "q"] and feedback.skipped_lines == (2,)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "got an empty log"),
        (["", "  "], "got an empty log"),
        (["this is not json"], r"Expected a JSON record on line 1 of .*'this is not json'"),
        (
            ['{"prompt": "p", "completion_a": "x", "completion_b": "y", "preference": "a"}', "[1, 2]"],
            r"Expected a JSON object on line 2",
        ),
        (['{"prompt": "p"}'], r"Expected a preference .* or a rating .* record on line 1 .*got keys \['prompt'\]"),
        (
            ['{"prompt": "p", "completion_a": "x", "completion_b": "y", "preference": "c"}'],
            r"Expected preference 'a', 'b' or 'tie' in line 1 .*got 'c'",
        ),
        (
            ['{"prompt": "p", "completion": "x", "rating": 9, "scale": [1, 5]}'],
            r"Expected rating to be a number from 1 to 5 in line 1 .*got 9",
        ),
        (['{"prompt": 3, "completion": "x", "rating": 2}'], r"Expected prompt to be a string in line 1"),
        (
            ['{"prompt": "p", "completion": "x", "rating": NaN, "scale": [1, 5]}'],
            r"Expected a JSON record of finite numbers on line 1 of .*, got NaN",
        ),
        (
            ['{"prompt": "p", "completion": "x", "rating": 3, "scale": [1, Infinity]}'],
            r"Expected a JSON record of finite numbers on line 1 of .*, got Infinity",
        ),
        (['{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"], r"Expected a JSON record on line 1 of .*nested too deeply"),
        (
            ['{"prompt": "p", "completion": "x", "rating": ' + "9" * 5000 + "}"],
            r"Expected a JSON record on line 1 of .*got one Python cannot read",
        ),
    ],
    ids=[
        "empty",
        "blank-lines",
        "not-json",
        "not-object",
        "unknown-record",
        "bad-choice",
        "rating-off-scale",
        "prompt-not-text",
        "nan",
        "infinity",
        "nesting-bomb",
        "int-past-python-limit",
    ],
)
def test_bad_logs_raise_and_name_the_line(tmp_path, lines, message):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(line + "\n" for line in lines))
    with pytest.raises(ValueError, match=message):
        read_feedback(log)


def test_a_missing_log_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="Expected a feedback log"):
        read_feedback(tmp_path / "nope.jsonl")


def test_record_builders_check_their_values():
    with pytest.raises(ValueError, match="Expected preference 'a', 'b' or 'tie', got 'x'"):
        preference_record("p", "a", "b", "x")
    with pytest.raises(ValueError, match="Expected a rating from 1 to 5, got 0"):
        rating_record("p", "c", 0, (1, 5))


def test_pairwise_preference_reader_accepts_web_records(tmp_path):
    log = tmp_path / "log.jsonl"
    append_record(log, preference_record("p", "x", "y", "tie", question_id="abc", source="web-model"))
    (preference,) = load_preferences(log)
    assert preference.preference == "tie" and json.loads(log.read_text())["question_id"] == "abc"
