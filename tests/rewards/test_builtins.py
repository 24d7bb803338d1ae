"""The built-in reward library as a whole: registration, documentation, doctests and mixing."""

from __future__ import annotations

import doctest
import importlib

import pytest

from textgen_env import rewards
from textgen_env.rewards import WeightedReward, available_rewards, make_reward

BUILT_INS = {
    "sentiment": rewards.SentimentReward,
    "sentiment-embedding": rewards.EmbeddingSentimentReward,
    "similarity": rewards.SimilarityReward,
    "bleu": rewards.BleuReward,
    "chrf": rewards.ChrfReward,
    "rouge": rewards.RougeReward,
    "toxicity": rewards.ToxicityReward,
    "readability": rewards.ReadabilityReward,
    "fluency": rewards.FluencyReward,
    "classifier": rewards.ClassifierReward,
    "human": rewards.HumanFeedbackReward,
    "human-replay": rewards.ReplayReward,
}
MODULES = ["sentiment", "embedding", "metrics", "quality", "lm", "human", "_deps"]


@pytest.mark.parametrize(("name", "cls"), BUILT_INS.items(), ids=list(BUILT_INS))
def test_registered_and_documented(name, cls):
    assert name in available_rewards()
    assert cls.name == name
    assert cls.__doc__ and "Range" in cls.__doc__, f"{cls.__name__} must document its range"


@pytest.mark.parametrize("module", MODULES, ids=MODULES)
def test_module_is_small_and_says_its_job(module):
    loaded = importlib.import_module(f"textgen_env.rewards.{module}")
    assert loaded.__doc__ and loaded.__doc__.strip().splitlines()[0].endswith(".")
    with open(loaded.__file__, encoding="utf-8") as file:
        assert sum(1 for _ in file) < 400


@pytest.mark.parametrize("module", MODULES, ids=MODULES)
def test_doctests(module):
    loaded = importlib.import_module(f"textgen_env.rewards.{module}")
    failures, _ = doctest.testmod(loaded, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failures == 0


def test_mix_of_a_plain_and_a_reference_reward():
    mix = make_reward({"sentiment": 1.0, "bleu": 0.5})
    assert isinstance(mix, WeightedReward) and mix.needs_references
    reference = "The capital of France is Paris."
    parts = mix.components(["Q"] * 2, [reference, "I hate it."], [True] * 2, references=[(reference,)] * 2)
    assert set(parts) == {"sentiment", "bleu"}
    assert parts["bleu"][0] == pytest.approx(0.5) and 0 <= parts["bleu"][1] < 0.05  # weight 0.5 applied
    assert parts["sentiment"][1] < 0


def test_missing_required_argument_is_reported_by_the_registry():
    with pytest.raises(TypeError, match=r"Bad reward_kwargs for reward 'similarity': .*target"):
        make_reward("similarity")
