"""The units of a draft and the edit operations over them (pure functions on word lists)."""

from __future__ import annotations

import pytest

from textgen_env.edit.operations import (
    Edit,
    apply_edit,
    check_edit,
    describe,
    join_words,
    phrase_spans,
    sentence_spans,
    split_words,
)

WORDS = split_words("The film was very long, and dull. I liked the music.")


def test_sentences_and_phrases():
    assert [(s.start, s.end) for s in sentence_spans(WORDS)] == [(0, 7), (7, 11)]
    assert [(s.start, s.end) for s in phrase_spans(WORDS)] == [(0, 4), (4, 5), (5, 7), (7, 11)]
    assert [(s.start, s.end) for s in sentence_spans(split_words("no end mark"))] == [(0, 3)]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (Edit("delete", 3, 4), "The film was long, and dull. I liked the music."),
        (Edit("insert", 3, 3, text="not"), "The film was not very long, and dull. I liked the music."),
        (Edit("insert", 11, 11, text="Fine."), "The film was very long, and dull. I liked the music. Fine."),
        (Edit("replace", 3, 5, text="short,"), "The film was short, and dull. I liked the music."),
        (Edit("swap", 0, 7, 7, 11), "I liked the music. The film was very long, and dull."),
        (Edit("move", 3, 4, 11), "The film was long, and dull. I liked the music. very"),
        (Edit("move", 9, 10, 8), "The film was very long, and dull. I the liked music."),
        (Edit("rewrite", 7, 11, text="The music was great."), "The film was very long, and dull. The music was great."),
        (Edit("split", 5, 5), "The film was very long. And dull. I liked the music."),
        (Edit("merge", 7, 7), "The film was very long, and dull, I liked the music."),
        (Edit("stop"), "The film was very long, and dull. I liked the music."),
    ],
    ids=[
        "delete",
        "insert",
        "insert-at-end",
        "replace",
        "swap",
        "move-right",
        "move-left",
        "rewrite",
        "split",
        "merge",
        "stop",
    ],
)
def test_apply_edit(edit, expected):
    assert check_edit(WORDS, edit) is None
    assert join_words(apply_edit(WORDS, edit)) == expected
    assert describe(WORDS, edit)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (Edit("delete", 0, 11), "every word"),
        (Edit("delete", 5, 20), "not inside"),
        (Edit("replace", 0, 1, text=" "), "empty"),
        (Edit("insert", 12, 12, text="x"), "not in"),
        (Edit("swap", 0, 3, 2, 5), "do not follow"),
        (Edit("move", 2, 4, 3), "cannot move"),
        (Edit("split", 7, 7), "no sentence continues"),
        (Edit("merge", 3, 3), "no sentence ends"),
        (Edit("jump", 0, 1), "unknown op"),
    ],
    ids=[
        "delete-all",
        "delete-outside",
        "replace-empty",
        "insert-outside",
        "swap-overlap",
        "move-inside",
        "split-at-end",
        "merge-mid-sentence",
        "unknown",
    ],
)
def test_check_edit_reasons(edit, reason):
    assert reason in check_edit(WORDS, edit)
