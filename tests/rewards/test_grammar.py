"""The offline grammaticality rewards: spelling-error rate from pyspellchecker's dictionary, SLOR and LM log-prob."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from gymnasium.error import DependencyNotInstalled

from textgen_env.rewards import (
    FluencyReward,
    GrammaticalityReward,
    SpellingReward,
    available_rewards,
    grammar,
    make_reward,
)
from textgen_env.rewards.grammar import spelling_error_rate

pytest.importorskip("spellchecker")


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("the film was great", 0.0),
        ("teh film was grate", 0.25),
        ("teh flim", 1.0),
        ("... 42 !", 0.0),
        ("I don't know", 0.0),
    ],
    ids=["correct", "one-typo", "all-typos", "no-words", "contraction"],
)
def test_spelling_error_rate(text, rate):
    assert spelling_error_rate(text) == pytest.approx(rate)


def test_spelling_reward_is_minus_the_rate_and_registered():
    assert {"spelling", "grammaticality"} <= set(available_rewards())
    scores = make_reward("spelling")(["", ""], ["good film", "gud flim"], [True, True])
    np.testing.assert_allclose(scores, [0.0, -1.0])


def test_grammaticality_components_equal_the_formulas(tiny):
    model, tokenizer = tiny
    reward = GrammaticalityReward(model, tokenizer, logprob_weight=0.5, slor_weight=2.0, spelling_weight=3.0)
    texts = ["the movie was great .", "was the great movie ."]
    parts = reward.components(["", ""], texts, [True, True])
    mean_logprob = FluencyReward(model, tokenizer)(["", ""], texts, [True, True])
    checker = grammar._spell_checker()
    counts, total = checker.word_frequency.dictionary, checker.word_frequency.total_words
    for i, text in enumerate(texts):
        words = text.replace(".", "").split()
        tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        unigram = sum(math.log((counts.get(w, 0) + 1) / (total + len(counts))) for w in words)
        slor = (mean_logprob[i] * tokens - unigram) / len(words)
        assert parts["grammar_logprob"][i] == pytest.approx(0.5 * mean_logprob[i])
        assert parts["grammar_slor"][i] == pytest.approx(2.0 * slor)
        assert parts["grammar_spelling"][i] == 0.0
    assert reward(["", ""], texts, [True, True]) == pytest.approx(sum(parts.values()))


def test_grammaticality_weights_are_checked(tiny):
    with pytest.raises(ValueError, match=r"Expected slor_weight to be a finite number, got nan"):
        GrammaticalityReward(*tiny, slor_weight=float("nan"))


def test_missing_pyspellchecker_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "spellchecker", None)
    grammar._spell_checker.cache_clear()
    try:
        with pytest.raises(DependencyNotInstalled, match=r"'spelling' reward .* Run: pip install pyspellchecker"):
            SpellingReward()([""], ["text"], [True])
    finally:
        grammar._spell_checker.cache_clear()
