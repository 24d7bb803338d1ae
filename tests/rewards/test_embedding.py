"""Sentence-embedding rewards on the bundled all-MiniLM-L6-v2: ordering, the shared encoder, offline loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textgen_env.rewards import EmbeddingSentimentReward, SimilarityReward, make_reward
from textgen_env.rewards.embedding import SentenceEncoder, shared_encoder

PAIRS = [
    ("I love this wonderful movie, it made me so happy.", "I hate this awful movie, it was so boring."),
    ("A joy from start to end.", "A tedious mess."),
    ("Best purchase ever, works like a charm.", "It broke after a day, a waste of money."),
]


@pytest.mark.parametrize(("positive", "negative"), PAIRS, ids=["movie", "short", "product"])
def test_positive_beats_negative(positive, negative):
    reward = EmbeddingSentimentReward()
    neutral = "The meeting is at three o'clock in room four."
    scores = reward(["Review:"] * 3, [positive, neutral, negative], [True] * 3)
    assert scores[0] > scores[1] > scores[2]
    assert scores[0] > 0.2 and scores[2] < -0.2 and abs(scores[1]) < 0.2
    assert np.all(np.abs(scores) <= 1)


def test_similarity_orders_paraphrase_above_unrelated():
    reward = SimilarityReward(target="A cat sleeps on the sofa.")
    texts = ["A cat sleeps on the sofa.", "The kitten naps on the couch.", "Stock prices fell sharply today."]
    scores = reward(["x"] * 3, texts, [True] * 3)
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    assert scores[0] > scores[1] > 0.5 > 0.2 > scores[2]


def test_encoder_is_shared_loaded_once_and_batch_invariant():
    first, second = EmbeddingSentimentReward(), make_reward("similarity", {"target": "hello"})
    assert first.encoder is second.encoder is shared_encoder("cpu")
    texts = ["short", "a much longer sentence with many more words in it", ""]
    batched = first.encoder.encode(texts)
    model = first.encoder._model
    single = torch.cat([first.encoder.encode([text]) for text in texts])
    assert first.encoder._model is model  # not reloaded
    assert batched.shape == (3, 384)
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(batched.norm(dim=1), torch.ones(3))


def test_custom_anchors_and_empty_batch():
    reward = EmbeddingSentimentReward(positive_anchors=["sunny weather"], negative_anchors=["heavy rain"], scale=1)
    scores = reward(["x"] * 2, ["It is bright and sunny.", "It is pouring with rain."], [True, True])
    assert scores[0] > 0 > scores[1]
    assert reward([], [], []).shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": ""}, "Expected target to be a non-empty string, got ''"),
        ({"target": 3}, "Expected target to be a non-empty string, got 3"),
        ({"target": "x", "encoder": "minilm"}, "Expected encoder to be a SentenceEncoder or None, got str"),
    ],
    ids=["empty-target", "int-target", "bad-encoder"],
)
def test_similarity_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        SimilarityReward(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"positive_anchors": []}, r"Expected positive_anchors to be a non-empty list of non-empty strings, got \[\]"),
        ({"negative_anchors": ["ok", " "]}, "Expected negative_anchors to be a non-empty list of non-empty strings"),
        ({"scale": 0}, "Expected scale to be a positive finite number, got 0"),
    ],
    ids=["no-positive", "blank-negative", "zero-scale"],
)
def test_sentiment_embedding_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EmbeddingSentimentReward(**kwargs)


def test_encoder_arguments(tmp_path):
    with pytest.raises(ValueError, match="Expected batch_size to be a positive int, got 0"):
        SentenceEncoder(batch_size=0)
    with pytest.raises(FileNotFoundError, match=r"Expected a model folder with config.json at path"):
        SentenceEncoder(tmp_path).encode(["x"])


@pytest.mark.slow
def test_loads_with_network_refused_and_hub_offline(run_offline):
    result = run_offline(
        "from textgen_env.rewards import SimilarityReward\n"
        "print(float(SimilarityReward(target='a cat')(['x'], ['a kitten'], [True])[0]))"
    )
    assert 0.5 < float(result.stdout.strip().splitlines()[-1]) < 1
