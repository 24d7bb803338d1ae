"""Group-level rewards: scores that see all completions of one GRPO group (a diversity bonus, a rank in the group).

The interface is `GroupReward.score_group(prompts, completions) -> np.ndarray`, one score per member of a group
(completions sampled for the same prompt). A `GroupReward` is also a plain `Reward`: called the usual way
(``reward(prompts, completions, dones)``, which is what every env does, since an env sees no groups) it returns its
documented **per-completion fallback**. So the same spec works everywhere:

* in ``TextGenEnv(reward=...)``, PPO, REINFORCE, SB3, TRL: each completion gets the fallback score;
* with ``agents.GRPO``: after each rollout, GRPO calls `score_group` on every group and replaces the fallback by the
  group score (`group_terms` says which parts of a reward it can replace: the reward itself, or a term of a
  weighted mix; a group reward inside `Sequential`/`Gate` keeps its fallback, with a warning).

>>> reward = DiversityReward(n=1)
>>> reward.score_group(["Q"] * 3, ["red apple", "red apple", "green pear"]).round(2)
array([0.5, 0.5, 1. ])
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

from textgen_env.rewards.base import Reward, WeightedReward, check_scores
from textgen_env.rewards.registry import RewardSpec, make_reward

__all__ = ["DiversityReward", "GroupRankReward", "GroupReward", "group_terms", "score_by_group"]


class GroupReward(Reward):
    """A reward that scores a group of completions of the same prompt together.

    Subclasses implement `score_group` and, when a cheaper or better one exists, the per-completion fallback
    `__call__` (by default each completion is scored as a group of one).
    """

    @abc.abstractmethod
    def score_group(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """One score per member of one group (``len(completions)`` >= 1, usually the same prompt repeated)."""

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        """The per-completion fallback: each completion scored as a group of one."""
        return np.array([float(self.score_group([p], [c])[0]) for p, c in zip(prompts, completions)])


def score_by_group(
    reward: GroupReward, prompts: Sequence[str], completions: Sequence[str], group_ids: Sequence[int]
) -> np.ndarray:
    """`reward.score_group` on each group (rows sharing a group id), validated and put back in row order."""
    if not (len(prompts) == len(completions) == len(group_ids)):
        raise ValueError(
            f"Expected as many prompts, completions and group ids, got {len(prompts)}, {len(completions)} and "
            f"{len(group_ids)}"
        )
    ids = np.asarray(group_ids)
    scores = np.zeros(len(completions))
    for group in dict.fromkeys(ids.tolist()):
        rows = np.flatnonzero(ids == group)
        members = [prompts[i] for i in rows.tolist()]
        texts = [completions[i] for i in rows.tolist()]
        scores[rows] = check_scores(reward.name, reward.score_group(members, texts), members)
    return scores


def group_terms(reward: Reward) -> tuple[list[tuple[GroupReward, float]], list[GroupReward]]:
    """The group rewards inside `reward`: ``(replaceable, nested)``.

    `replaceable` pairs each group reward that is the reward itself or a term of a (possibly nested) weighted mix
    with its overall weight: its contribution to the score is exactly ``weight * fallback``, which a trainer with
    groups may replace by ``weight * group score``. `nested` lists those inside other compositions (`Sequential`,
    `Gate`, custom rewards' attributes are not searched), whose contribution depends on other parts; they keep the
    fallback.
    """
    if isinstance(reward, GroupReward):
        return [(reward, 1.0)], []
    if isinstance(reward, WeightedReward):
        replaceable: list[tuple[GroupReward, float]] = []
        nested: list[GroupReward] = []
        for term, weight in reward.terms:
            inner, deeper = group_terms(term)
            replaceable.extend((group, weight * inner_weight) for group, inner_weight in inner)
            nested.extend(deeper)
        return replaceable, nested
    stages = getattr(reward, "stages", None)  # Sequential and Gate
    if isinstance(stages, list):
        nested = []
        for stage, _ in stages:
            inner, deeper = group_terms(stage)
            nested.extend([group for group, _ in inner] + deeper)
        return [], nested
    return [], []


def _word_ngrams(text: str, n: int) -> frozenset[tuple[str, ...]]:
    words = text.lower().split()
    if len(words) < n:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


class DiversityReward(GroupReward):
    """A bonus for completions unlike the rest of their group.

    Group score of a completion = 1 - its mean Jaccard similarity (word n-gram sets, lower-cased) to the other
    members. Range [0, 1]: 1 shares no n-gram with any other member, 0 is identical to all of them (two empty
    completions count as identical). A text shorter than n words is one n-gram of its words.

    Fallback (no group, or a group of one): the completion's own distinct-n share (distinct n-grams / n-grams; 1
    for a text shorter than n words, 0 for an empty one), a within-text diversity that penalises loops.

    Args:
        n: the n-gram order (words).
    """

    name = "diversity"

    def __init__(self, n: int = 2) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"Expected n to be a positive int, got {n!r}")
        self.n = n

    def score_group(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        if len(completions) < 2:
            return self(prompts, completions, [True] * len(completions))
        grams = [_word_ngrams(text, self.n) for text in completions]
        size = len(grams)
        similarity = np.ones((size, size))
        for i in range(size):
            for j in range(i + 1, size):
                union = grams[i] | grams[j]
                similarity[i, j] = similarity[j, i] = len(grams[i] & grams[j]) / len(union) if union else 1.0
        return 1.0 - (similarity.sum(axis=1) - 1.0) / (size - 1)

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        scores = np.zeros(len(completions))
        for i, text in enumerate(completions):
            words = text.lower().split()
            total = len(words) - self.n + 1
            if not words:
                continue
            scores[i] = 1.0 if total < 1 else len(_word_ngrams(text, self.n)) / total
        return scores


class GroupRankReward(GroupReward):
    """The rank of another reward's score within the group, scaled to [0, 1] (RULER-style relative grading).

    Group score = (rank - 1) / (k - 1) for a group of k (ties share their mean rank): 1 for the group's best, 0 for
    its worst, whatever the base reward's scale. Being relative, it keeps a signal when every member is scored high
    (or low) on an absolute scale, e.g. by a small judge.

    Fallback (no group, or a group of one): the base reward's own score (a rank needs peers).

    Args:
        reward: the base reward (a `Reward` or any spec `make_reward` takes), e.g. a `JudgeReward`.
        reward_kwargs: constructor arguments when `reward` is a registered name.
    """

    name = "rank"

    def __init__(self, reward: Reward | RewardSpec, reward_kwargs: dict[str, Any] | None = None) -> None:
        self.reward = reward if isinstance(reward, Reward) else make_reward(reward, reward_kwargs)
        if self.reward.needs_references:
            raise ValueError(f"Expected a base reward without references, got {self.reward.name!r}")
        self.name = f"{self.reward.name}_rank"

    def score_group(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        base = check_scores(self.reward.name, self.reward(prompts, completions, [True] * len(prompts)), prompts)
        if len(base) < 2:
            return base
        order = base.argsort(kind="stable")
        ranks = np.empty(len(base))
        ranks[order] = np.arange(len(base), dtype=np.float64)
        for value in np.unique(base):  # ties share their mean rank
            tied = base == value
            ranks[tied] = ranks[tied].mean()
        return ranks / (len(base) - 1)

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        return check_scores(self.reward.name, self.reward(prompts, completions, dones), prompts)
