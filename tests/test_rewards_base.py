"""Reward protocol, adapters, weighted mixes, the registry, the text rewards and dense/sparse shaping."""

from __future__ import annotations

import numpy as np
import pytest

from textgen_env.rewards import (
    FunctionReward,
    KeywordReward,
    LengthReward,
    RegexReward,
    RepetitionReward,
    Reward,
    RewardShaper,
    WeightedReward,
    available_rewards,
    make_reward,
    register_reward,
)


def _score(reward, *completions):
    return reward(["p"] * len(completions), list(completions), [True] * len(completions))


@pytest.mark.parametrize(
    ("reward", "better", "worse"),
    [
        (KeywordReward(["great"]), "a great film", "a film"),
        (KeywordReward(["great"], avoid=["dull"]), "great", "great but dull"),
        (RegexReward([r"\d+"]), "it costs 5 euros", "it costs five euros"),
        (LengthReward(target=4), "one two three four", "one"),
        (RepetitionReward(n=2), "the cat sat on the mat", "the cat the cat the cat"),
    ],
    ids=["keyword", "keyword-avoid", "regex", "length", "repetition"],
)
def test_text_rewards_order_obvious_pairs(reward, better, worse):
    high, low = _score(reward, better, worse)
    assert high > low


def test_keyword_matches_whole_words_only():
    assert _score(KeywordReward(["art"]), "the art of film", "a party").tolist() == [1.0, 0.0]


def test_function_reward_adapter_and_name():
    reward = FunctionReward(lambda prompt, completion, done: len(completion) + done, name="chars")
    assert reward(["a", "b"], ["xy", "xyz"], [False, True]).tolist() == [2.0, 4.0]
    assert reward.components(["a"], ["x"], [False]) == {"chars": np.array([1.0])}


def test_weighted_reward_components_add_up():
    mix = make_reward({"keyword": 2.0, "length": -1.0}, {"length": {"target": 2}})
    parts = mix.components(["p"], ["great stuff here"], [True])
    assert set(parts) == {"keyword", "length"} == set(mix.component_names)
    assert parts["keyword"][0] == pytest.approx(2 / 3) and parts["length"][0] == pytest.approx(0.5)
    assert mix(["p"], ["great stuff here"], [True])[0] == pytest.approx(2 / 3 + 0.5)


class _WrongCount(Reward):
    name = "wrong-count"

    def __call__(self, prompts, completions, dones):
        return np.zeros(len(prompts) + 1)


def test_batched_reward_with_wrong_number_of_values():
    with pytest.raises(ValueError, match=r"Expected reward 'wrong-count' to return 2 values \(one per completion\)"):
        _WrongCount().components(["a", "b"], ["x", "y"], [True, True])


def test_registry():
    assert {"keyword", "length", "regex", "repetition"} <= set(available_rewards())
    register_reward("test-constant", lambda value=1.0: FunctionReward(lambda p, c, d: value), overwrite=True)
    assert make_reward("test-constant", {"value": 3.0})(["p"], ["c"], [True]).tolist() == [3.0]
    with pytest.raises(ValueError, match=r"got 'test-constant', which is registered already"):
        register_reward("test-constant", KeywordReward)
    with pytest.raises(TypeError, match=r"Bad reward_kwargs for reward 'length'"):
        make_reward("length", {"nonsense": 1})
    with pytest.raises(TypeError, match=r"Expected reward to be a registered name, a Reward, a callable"):
        make_reward(42)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: LengthReward(target=0), r"Expected target to be a positive int \(words\), got 0"),
        (lambda: RepetitionReward(n=0), r"Expected n to be a positive int, got 0"),
        (lambda: RegexReward(), r"Expected at least one pattern or pattern to avoid for 'regex'"),
        (lambda: WeightedReward({}), r"Expected at least one reward in the mix"),
        (lambda: WeightedReward({KeywordReward(): float("inf")}), r"finite number as the weight of reward 'keyword'"),
    ],
    ids=["length-target", "repetition-n", "regex-empty", "empty-mix", "inf-weight"],
)
def test_constructor_errors(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_keyword_type_error():
    with pytest.raises(TypeError, match=r"Expected keywords to be a non-empty string or a list of them, got \[3\]"):
        KeywordReward([3])


@pytest.mark.parametrize("mode", ["sparse", "dense"], ids=["sparse", "dense"])
def test_shaper_returns_sum_to_final_score_per_slot(mode):
    shaper = RewardShaper(make_reward({"keyword": 1.0, "length": 0.5}, {"length": {"target": 3}}), mode, 2)
    texts = [["great", "great day", "great day good"], ["bad", "bad day", "bad day love"]]
    totals = np.zeros(2)
    for t in range(3):
        rewards, parts = shaper.step([0, 1], ["p", "p"], [texts[0][t], texts[1][t]], [t == 2, t == 2])
        np.testing.assert_allclose(rewards, parts["keyword"] + parts["length"])
        totals += rewards
    final = make_reward({"keyword": 1.0, "length": 0.5}, {"length": {"target": 3}})
    np.testing.assert_allclose(totals, final(["p", "p"], [texts[0][2], texts[1][2]], [True, True]))
    shaper.reset([0])
    rewards, _ = shaper.step([0], ["p"], ["great"], [False])
    assert rewards[0] == pytest.approx(0.0 if mode == "sparse" else 1 / 3 + 0.5 * (-2 / 3))


def test_unknown_reward_mode():
    with pytest.raises(ValueError, match=r"Expected reward_mode to be one of \['sparse', 'dense'\], got 'x'"):
        RewardShaper(KeywordReward(), "x", 1)
