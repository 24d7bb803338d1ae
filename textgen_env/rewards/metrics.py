"""Reference-based rewards: sentence BLEU and chrF (sacrebleu) and ROUGE (rouge-score) against reference texts.

Each sets ``needs_references = True``: the env passes ``references=`` (one tuple of reference strings per
completion) from a prompt source that has them, and the score is taken against all of a completion's references.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

from textgen_env.rewards._deps import require
from textgen_env.rewards.base import Reward

__all__ = ["ROUGE_TYPES", "BleuReward", "ChrfReward", "RougeReward"]

ROUGE_TYPES: tuple[str, ...] = (*(f"rouge{n}" for n in range(1, 10)), "rougeL", "rougeLsum")
"""rouge-score's types: n-gram overlap for n = 1..9, longest common subsequence, and its summary-level variant."""


def _check_references(name: str, references: Sequence[Sequence[str]] | None, count: int) -> list[tuple[str, ...]]:
    if references is None:
        raise ValueError(
            f"Expected references for reward {name!r} (one tuple of strings per completion), got None; pass "
            "references=... or use a prompt source that supplies them"
        )
    if len(references) != count:
        raise ValueError(
            f"Expected one tuple of references per completion ({count}) for reward {name!r}, got {len(references)}"
        )
    checked = []
    for i, refs in enumerate(references):
        refs = (refs,) if isinstance(refs, str) else tuple(refs)
        if not refs or any(not isinstance(ref, str) for ref in refs):
            raise ValueError(
                f"Expected a non-empty tuple of strings as the references of completion {i} for reward {name!r}, "
                f"got {refs!r}"
            )
        checked.append(refs)
    return checked


class _SacrebleuReward(Reward):
    needs_references = True

    def __init__(self) -> None:
        self._metric: Any = None  # built on the first call, so importing this module never imports sacrebleu

    @abc.abstractmethod
    def _build(self, sacrebleu: Any) -> Any:
        """The sacrebleu metric object this reward scores with."""

    def __call__(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        dones: Sequence[bool],
        references: Sequence[Sequence[str]] | None = None,
    ) -> np.ndarray:
        refs = _check_references(self.name, references, len(completions))
        if self._metric is None:
            self._metric = self._build(require("sacrebleu.metrics", "sacrebleu", reward=self.name))
        scores = [self._metric.sentence_score(text, list(r)).score for text, r in zip(completions, refs)]
        return np.clip(np.array(scores, dtype=np.float64) / 100.0, 0.0, 1.0)


class BleuReward(_SacrebleuReward):
    """Sentence BLEU of the completion against its references (sacrebleu, effective n-gram order), divided by 100.

    Range [0, 1]; 1 means the completion equals a reference. Word n-gram precision with a brevity penalty: strict
    about wording, so best for short factual answers or translations. Needs ``pip install sacrebleu``.

    >>> BleuReward()(["Q"], ["the cat sat on the mat"], [True], references=[("the cat sat on the mat",)])
    array([1.])
    """

    name = "bleu"

    def _build(self, sacrebleu: Any) -> Any:
        return sacrebleu.BLEU(effective_order=True)


class ChrfReward(_SacrebleuReward):
    """Sentence chrF of the completion against its references (sacrebleu), divided by 100.

    Range [0, 1]. Character n-gram F-score: more forgiving than BLEU of inflections and partial words.
    ``word_order=2`` gives chrF++. Needs ``pip install sacrebleu``.

    >>> reward = ChrfReward()
    >>> reward(["Q", "Q"], ["the cat sat", "a dog ran"], [True, True], references=[("the cat sat",)] * 2).round(2)
    array([1.  , 0.04])
    """

    name = "chrf"

    def __init__(self, word_order: int = 0) -> None:
        if isinstance(word_order, bool) or not isinstance(word_order, int) or word_order < 0:
            raise ValueError(f"Expected word_order to be an int >= 0 (2 gives chrF++), got {word_order!r}")
        super().__init__()
        self.word_order = word_order

    def _build(self, sacrebleu: Any) -> Any:
        return sacrebleu.CHRF(word_order=self.word_order)


class RougeReward(Reward):
    """ROUGE F-measure of the completion against its best-matching reference (rouge-score).

    Range [0, 1]. ``rouge_type`` is one of `ROUGE_TYPES`: ``"rougeL"`` (default, longest common subsequence),
    ``"rouge1"``/``"rouge2"`` (unigram/bigram overlap), ... Words are lower-cased, Porter-stemmed
    (``use_stemmer=True``) and split on non-alphanumerics, so non-Latin text scores 0. Needs
    ``pip install rouge-score``.

    >>> RougeReward()(["Q"], ["the cat sat"], [True], references=[("the cat sat on the mat",)]).round(3)
    array([0.667])
    """

    name = "rouge"
    needs_references = True

    def __init__(self, rouge_type: str = "rougeL", use_stemmer: bool = True) -> None:
        if rouge_type not in ROUGE_TYPES:
            raise ValueError(f"Expected rouge_type to be one of {list(ROUGE_TYPES)}, got {rouge_type!r}")
        self.rouge_type = rouge_type
        self.use_stemmer = bool(use_stemmer)
        self._scorer: Any = None

    def __call__(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        dones: Sequence[bool],
        references: Sequence[Sequence[str]] | None = None,
    ) -> np.ndarray:
        refs = _check_references(self.name, references, len(completions))
        if self._scorer is None:
            rouge_scorer = require("rouge_score.rouge_scorer", "rouge-score", reward=self.name)
            self._scorer = rouge_scorer.RougeScorer([self.rouge_type], use_stemmer=self.use_stemmer)
        scores = [
            self._scorer.score_multi(list(r), text)[self.rouge_type].fmeasure for text, r in zip(completions, refs)
        ]
        return np.array(scores, dtype=np.float64)
