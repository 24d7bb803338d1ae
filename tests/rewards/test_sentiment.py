"""SentimentReward: VADER compound score, with the sign set by `target`."""

from __future__ import annotations

import numpy as np
import pytest

from textgen_env.rewards import SentimentReward, make_reward

PAIRS = [
    ("I loved this film, it was wonderful and moving.", "I hated this film, it was awful and boring."),
    ("What a great day, I am so happy!", "What a terrible day, I am so sad."),
    ("The food was good.", "The food was bad."),
]


@pytest.mark.parametrize(("positive", "negative"), PAIRS, ids=["film", "day", "food"])
def test_positive_beats_negative(positive, negative):
    scores = SentimentReward()(["Review:"] * 2, [positive, negative], [True, True])
    assert scores[0] > 0 > scores[1]


def test_negative_target_flips_the_sign():
    texts = [positive for positive, _ in PAIRS] + [negative for _, negative in PAIRS] + ["The train leaves at noon."]
    prompts, dones = ["x"] * len(texts), [True] * len(texts)
    positive = SentimentReward(target="positive")(prompts, texts, dones)
    np.testing.assert_allclose(SentimentReward(target="negative")(prompts, texts, dones), -positive)
    assert positive.shape == (len(texts),) and np.all(np.abs(positive) <= 1)
    assert positive[-1] == 0.0  # neutral text


def test_empty_batch_and_empty_text():
    reward = SentimentReward()
    assert reward([], [], []).shape == (0,)
    assert reward(["x"], [""], [False])[0] == 0.0


def test_registered_with_kwargs():
    reward = make_reward("sentiment", {"target": "negative"})
    assert isinstance(reward, SentimentReward) and reward.target == "negative" and reward.name == "sentiment"


def test_unknown_target():
    with pytest.raises(ValueError, match=r"Expected target to be one of \['positive', 'negative'\], got 'happy'"):
        SentimentReward(target="happy")
