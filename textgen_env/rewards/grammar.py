"""Offline grammaticality scores: spelling errors from a shipped dictionary, and SLOR / normalised log-prob of an LM.

The dictionary and word frequencies are pyspellchecker's English list (it ships inside the wheel: no network). SLOR
(syntactic log-odds ratio, Pauls & Klein 2012; Lau, Clark & Lappin 2017) subtracts the text's unigram log-probability
from its LM log-probability and divides by its length, so frequent words are not mistaken for grammatical ones:
``SLOR = (log p_LM(text) - sum over words of log p_unigram(word)) / words``. Here the LM log-probability comes from
`FluencyReward` (mean token log-prob times the token count) and the unigram one from the dictionary's counts
(add-one smoothed); the two are over the same text, so their difference is a log-ratio per word.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from textgen_env.rewards._deps import require
from textgen_env.rewards.base import Reward, check_scores
from textgen_env.rewards.lm import FluencyReward, ModelSpec, TokenizerSpec

__all__ = ["GrammaticalityReward", "SpellingReward", "spelling_error_rate"]

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


@functools.cache
def _spell_checker() -> Any:
    module = require("spellchecker", "pyspellchecker", reward="spelling")
    return module.SpellChecker(language="en", distance=1)


def _words(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)]


def spelling_error_rate(text: str) -> float:
    """Share of the alphabetic words of `text` that the English dictionary does not know (0 for no words)."""
    words = _words(text)
    if not words:
        return 0.0
    known = _spell_checker().known(words)
    return sum(word not in known for word in words) / len(words)


class SpellingReward(Reward):
    """Minus the share of misspelled words: ``-(unknown words / words)`` over alphabetic words. Range [-1, 0].

    Needs ``pip install pyspellchecker`` (its dictionary ships in the wheel).

    >>> SpellingReward()(["x"], ["the film was grate", "teh flim"], [True, True]).round(2)
    array([ 0., -1.])
    """

    name = "spelling"

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        return 0.0 - np.array([spelling_error_rate(text) for text in completions], dtype=np.float64)  # no -0.0


class GrammaticalityReward(Reward):
    """A weighted grammaticality score with three parts (each reported as a component):

    * ``grammar_logprob``: mean token log-probability of the text under a frozen LM (length-normalised), in [-20, 0];
    * ``grammar_slor``: SLOR per word (see the module docstring), clipped to [-20, 20]; higher is better;
    * ``grammar_spelling``: minus the spelling-error rate, in [-1, 0].

    Score = logprob_weight * logprob + slor_weight * slor + spelling_weight * spelling. The LM is scored on the
    text alone (the prompt is not its context), as grammaticality is a property of the text.

    Args:
        model: the LM (name, path, instance or None for the embedded default), as for `FluencyReward`.
        tokenizer: its tokenizer.
        logprob_weight / slor_weight / spelling_weight: the weights (finite numbers).
        device / batch_size: as for `FluencyReward`.

    >>> from textgen_env.testing import tiny_model_and_tokenizer
    >>> model, tokenizer = tiny_model_and_tokenizer()
    >>> reward = GrammaticalityReward(model, tokenizer)
    >>> sorted(reward.components(["x"], ["the movie was great ."], [True]))
    ['grammar_logprob', 'grammar_slor', 'grammar_spelling']
    """

    name = "grammaticality"

    def __init__(
        self,
        model: ModelSpec = None,
        tokenizer: TokenizerSpec = None,
        *,
        logprob_weight: float = 0.0,
        slor_weight: float = 1.0,
        spelling_weight: float = 1.0,
        device: str = "cpu",
        batch_size: int = 32,
    ) -> None:
        self.weights = {}
        for key, value in (("logprob", logprob_weight), ("slor", slor_weight), ("spelling", spelling_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"Expected {key}_weight to be a finite number, got {value!r}")
            self.weights[key] = float(value)
        self.lm = FluencyReward(model, tokenizer, device=device, batch_size=batch_size, min_logprob=-20.0)

    @property
    def component_names(self) -> tuple[str, ...]:
        return ("grammar_logprob", "grammar_slor", "grammar_spelling")

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        return cast(np.ndarray, sum(self.components(prompts, completions, dones).values()))  # three arrays

    def components(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        dones: Sequence[bool],
        references: Sequence[tuple[str, ...]] | None = None,
    ) -> dict[str, np.ndarray]:
        texts = list(completions)
        mean_logprob = self.lm([""] * len(texts), texts, list(dones))  # (B,) per token
        _, tokenizer = self.lm._load()
        tokens = np.array([len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]], dtype=float)
        checker = _spell_checker()
        frequencies, total = checker.word_frequency.dictionary, checker.word_frequency.total_words
        size = len(frequencies)
        slor = np.zeros(len(texts))
        for i, text in enumerate(texts):
            words = _words(text)
            if words and tokens[i]:
                unigram = sum(math.log((frequencies.get(w, 0) + 1) / (total + size)) for w in words)
                slor[i] = (mean_logprob[i] * tokens[i] - unigram) / len(words)
        spelling = 0.0 - np.array([spelling_error_rate(text) for text in texts])
        parts = {
            "grammar_logprob": self.weights["logprob"] * mean_logprob,
            "grammar_slor": self.weights["slor"] * np.clip(slor, -20.0, 20.0),
            "grammar_spelling": self.weights["spelling"] * spelling,
        }
        return {key: check_scores(key, values, texts) for key, values in parts.items()}
