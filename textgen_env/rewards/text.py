"""Rewards computed from the text alone: keyword, regex, length and repetition. Fast, no dependencies."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from textgen_env.rewards.base import Reward

__all__ = ["KeywordReward", "LengthReward", "RegexReward", "RepetitionReward"]


def _as_tuple(name: str, value: str | Sequence[str]) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    if any(not isinstance(item, str) or not item for item in items):
        raise TypeError(f"Expected {name} to be a non-empty string or a list of them, got {value!r}")
    return items


class RegexReward(Reward):
    """Reward for matching patterns and penalty for matching patterns to avoid.

    Score = (share of `patterns` found in the completion) - (share of `avoid` found). Range [-1, 1].

    >>> RegexReward(patterns=[r"\\d+"])(["Count:"], ["one two 3"], [True])
    array([1.])
    """

    name = "regex"

    def __init__(
        self, patterns: str | Sequence[str] = (), avoid: str | Sequence[str] = (), ignore_case: bool = True
    ) -> None:
        self.patterns = _as_tuple("patterns", patterns)
        self.avoid = _as_tuple("avoid", avoid)
        if not self.patterns and not self.avoid:
            raise ValueError(f"Expected at least one pattern or pattern to avoid for {self.name!r}, got none")
        flags = re.IGNORECASE if ignore_case else 0
        self._wanted = [re.compile(p, flags) for p in self.patterns]
        self._unwanted = [re.compile(p, flags) for p in self.avoid]

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        scores = np.zeros(len(completions))
        for i, text in enumerate(completions):
            if self._wanted:
                scores[i] += sum(bool(p.search(text)) for p in self._wanted) / len(self._wanted)
            if self._unwanted:
                scores[i] -= sum(bool(p.search(text)) for p in self._unwanted) / len(self._unwanted)
        return scores


class KeywordReward(RegexReward):
    """Reward for containing keywords (whole words, case-insensitive), penalty for containing words to avoid.

    Score = (share of `keywords` present) - (share of `avoid` present). Range [-1, 1].

    >>> KeywordReward(keywords=["great", "fun"])(["It was"], ["great fun", "dull"], [True, True])
    array([1., 0.])
    """

    name = "keyword"

    def __init__(
        self, keywords: str | Sequence[str] = ("great", "good", "love"), avoid: str | Sequence[str] = ()
    ) -> None:
        keywords, avoid = _as_tuple("keywords", keywords), _as_tuple("avoid", avoid)
        super().__init__(
            patterns=[rf"\b{re.escape(word)}\b" for word in keywords],
            avoid=[rf"\b{re.escape(word)}\b" for word in avoid],
        )
        self.keywords = keywords


class LengthReward(Reward):
    """Closeness of the completion's length in words to a target length.

    Score = -min(1, |words - target| / target). Range [-1, 0]; 0 exactly at the target.

    >>> LengthReward(target=3)(["Hi"], ["one two three", "one"], [True, True]).round(3)
    array([ 0.   , -0.667])
    """

    name = "length"

    def __init__(self, target: int = 20) -> None:
        if isinstance(target, bool) or not isinstance(target, int) or target < 1:
            raise ValueError(f"Expected target to be a positive int (words), got {target!r}")
        self.target = target

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        lengths = np.array([len(text.split()) for text in completions], dtype=np.float64)
        return -np.minimum(1.0, np.abs(lengths - self.target) / self.target)


class RepetitionReward(Reward):
    """Penalty for repeated word n-grams in the completion.

    Score = -(share of the completion's n-grams that repeat an earlier one). Range [-1, 0]; 0 means no repeats.

    >>> RepetitionReward(n=2)(["x"], ["a b c d", "a b a b a b"], [True, True]).round(3)
    array([ 0. , -0.6])
    """

    name = "repetition"

    def __init__(self, n: int = 2) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"Expected n to be a positive int, got {n!r}")
        self.n = n

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        scores = np.zeros(len(completions))
        for i, text in enumerate(completions):
            words = text.lower().split()
            grams = [tuple(words[j : j + self.n]) for j in range(len(words) - self.n + 1)]
            if grams:
                scores[i] = -(len(grams) - len(set(grams))) / len(grams)
        return scores
