"""Lexicon-based sentiment reward: the VADER compound score of the completion."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from textgen_env.rewards._deps import require
from textgen_env.rewards.base import Reward

__all__ = ["SENTIMENT_TARGETS", "SentimentReward"]

SENTIMENT_TARGETS = ("positive", "negative")


@functools.lru_cache(maxsize=1)
def _vader_analyzer() -> Any:
    """The one VADER analyzer of the process (reading its lexicon takes ~20 ms, so it is built once, on first use)."""
    vader = require("vaderSentiment.vaderSentiment", "vaderSentiment", reward="sentiment")
    return vader.SentimentIntensityAnalyzer()


class SentimentReward(Reward):
    """VADER sentiment of the completion (the prompt is ignored).

    Score = VADER's compound score for ``target="positive"`` and its negation for ``target="negative"``.
    Range [-1, 1]. VADER is a rule-based lexicon model: fast (no neural network) and offline, but it only sees
    words it knows, so it rewards sentiment words rather than judging meaning. Needs ``pip install vaderSentiment``.

    >>> SentimentReward()(["Review:"], ["I love this wonderful film", "A dull, awful film"], [True, True]).round(2)
    array([ 0.86, -0.69])
    """

    name = "sentiment"

    def __init__(self, target: Literal["positive", "negative"] = "positive") -> None:
        if target not in SENTIMENT_TARGETS:
            raise ValueError(f"Expected target to be one of {list(SENTIMENT_TARGETS)}, got {target!r}")
        self.target = target

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        analyzer = _vader_analyzer()
        scores = np.array([analyzer.polarity_scores(text)["compound"] for text in completions], dtype=np.float64)
        return scores if self.target == "positive" else -scores
