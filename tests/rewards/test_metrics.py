"""BLEU, chrF and ROUGE against references: matching beats unrelated, references are validated."""

from __future__ import annotations

import numpy as np
import pytest

from textgen_env.rewards import BleuReward, ChrfReward, RougeReward, make_reward
from textgen_env.rewards.metrics import ROUGE_TYPES

REFERENCE = "The Eiffel Tower is in Paris, the capital of France."
CLOSE = "The Eiffel Tower is in Paris, France."
UNRELATED = "My dog likes to chase red balls in the garden."

REWARDS = [BleuReward, ChrfReward, RougeReward, lambda: RougeReward(rouge_type="rouge2"), lambda: ChrfReward(2)]
IDS = ["bleu", "chrf", "rougeL", "rouge2", "chrf++"]


@pytest.mark.parametrize("factory", REWARDS, ids=IDS)
def test_matching_beats_unrelated(factory):
    reward = factory()
    texts = [REFERENCE, CLOSE, UNRELATED, ""]
    scores = reward(["Where is the Eiffel Tower?"] * 4, texts, [True] * 4, references=[(REFERENCE,)] * 4)
    assert scores.shape == (4,) and np.all((scores >= 0) & (scores <= 1))
    assert scores[0] == pytest.approx(1.0)
    assert scores[0] > scores[1] > scores[2] >= scores[3] == 0.0


@pytest.mark.parametrize("factory", REWARDS, ids=IDS)
def test_best_reference_counts(factory):
    reward = factory()
    one = reward(["Q"], [CLOSE], [True], references=[(REFERENCE,)])
    several = reward(["Q"], [CLOSE], [True], references=[(UNRELATED, REFERENCE)])
    assert several[0] >= one[0] > 0


@pytest.mark.parametrize("factory", REWARDS, ids=IDS)
def test_references_validated(factory):
    reward = factory()
    assert reward.needs_references
    with pytest.raises(ValueError, match=r"Expected references for reward .* got None"):
        reward(["Q"], [CLOSE], [True])
    with pytest.raises(ValueError, match=r"Expected one tuple of references per completion \(2\) .* got 1"):
        reward(["Q", "Q"], [CLOSE, CLOSE], [True, True], references=[(REFERENCE,)])
    with pytest.raises(ValueError, match="Expected a non-empty tuple of strings as the references of completion 0"):
        reward(["Q"], [CLOSE], [True], references=[()])


def test_components_pass_references_through():
    reward = make_reward("bleu")
    parts = reward.components(["Q"], [REFERENCE], [True], references=[(REFERENCE,)])
    assert list(parts) == ["bleu"] and parts["bleu"][0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="Expected references for reward 'bleu', got none"):
        reward.components(["Q"], [REFERENCE], [True])


def test_a_single_reference_string_is_accepted():
    scores = BleuReward()(["Q"], [REFERENCE], [True], references=[REFERENCE])
    assert scores[0] == pytest.approx(1.0)


def test_unknown_rouge_type_lists_valid_ones():
    with pytest.raises(ValueError, match=r"Expected rouge_type to be one of \['rouge1', .*'rougeLsum'\], got 'rougeX'"):
        RougeReward(rouge_type="rougeX")
    assert "rougeL" in ROUGE_TYPES


def test_bad_chrf_word_order():
    with pytest.raises(ValueError, match=r"Expected word_order to be an int >= 0 \(2 gives chrF\+\+\), got -1"):
        ChrfReward(word_order=-1)
