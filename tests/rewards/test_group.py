"""Group rewards: group scores see the whole group, the fallback scores one completion, group_terms finds them."""

from __future__ import annotations

import numpy as np
import pytest

from textgen_env.rewards import (
    DiversityReward,
    Gate,
    GroupRankReward,
    KeywordReward,
    LengthReward,
    group_terms,
    make_reward,
    score_by_group,
)


def test_diversity_rewards_the_member_unlike_its_group():
    scores = DiversityReward(n=2).score_group(["Q"] * 4, ["a b c", "a b c", "a b c", "x y z"])
    assert scores[3] == pytest.approx(1.0)
    np.testing.assert_allclose(scores[:3], 1 / 3)  # identical to 2 of its 3 peers


def test_diversity_of_an_all_identical_group_is_zero():
    np.testing.assert_allclose(DiversityReward().score_group(["Q"] * 3, ["same text"] * 3), 0.0)


def test_diversity_fallback_is_the_distinct_ngram_share_of_one_completion():
    scores = DiversityReward(n=1)(["Q"] * 3, ["a b c", "a a a a", ""], [True] * 3)
    np.testing.assert_allclose(scores, [1.0, 0.25, 0.0])


def test_rank_is_relative_to_the_group_with_ties_sharing_their_mean_rank():
    rank = GroupRankReward(LengthReward(target=4))
    scores = rank.score_group(["Q"] * 4, ["a", "a b c d", "a b", "a b"])
    np.testing.assert_allclose(scores, [0.0, 1.0, 0.5, 0.5])
    assert rank.name == "length_rank"


def test_rank_fallback_is_the_base_score():
    rank = GroupRankReward("length", {"target": 4})
    np.testing.assert_allclose(rank(["Q"] * 2, ["a", "a b c d"], [True] * 2), [-0.75, 0.0])


def test_score_by_group_scores_each_group_separately():
    scores = score_by_group(DiversityReward(n=1), ["Q"] * 4, ["a", "a", "b", "c"], [0, 0, 1, 1])
    np.testing.assert_allclose(scores, [0.0, 0.0, 1.0, 1.0])


def test_group_terms_finds_weighted_terms_and_reports_nested_ones():
    diversity = DiversityReward()
    mix = make_reward({"keyword": 1.0, diversity: 0.2})
    assert group_terms(mix) == ([(diversity, 0.2)], [])
    assert group_terms(diversity) == ([(diversity, 1.0)], [])
    gated = Gate(diversity, when=KeywordReward())
    assert group_terms(gated) == ([], [diversity])
    assert group_terms(KeywordReward()) == ([], [])


def test_group_rewards_by_name():
    assert isinstance(make_reward("diversity", {"n": 3}), DiversityReward)
    assert isinstance(make_reward("rank", {"reward": "length"}), GroupRankReward)


def test_bad_group_reward_arguments_raise():
    with pytest.raises(ValueError, match="Expected n to be a positive int"):
        DiversityReward(n=0)
    with pytest.raises(ValueError, match="as many prompts, completions and group ids"):
        score_by_group(DiversityReward(), ["Q"], ["a", "b"], [0, 0])
