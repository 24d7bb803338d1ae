"""TextCompletion-v0 and CompletionWrapper: checkers, rewards equal to the token envs' for the same tokens, text and
padded actions, one step per dialogue reply, and bad input."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import textgen_env  # noqa: F401  (registers TextCompletion-v0)
from textgen_env import CompletionWrapper, TextCompletionEnv
from textgen_env.dialogue import TextDialogueEnv


@pytest.fixture
def settings(tiny):
    model, tokenizer = tiny
    return dict(model=model, tokenizer=tokenizer, max_new_tokens=6, max_prompt_tokens=16)


def _token_env_return(env, ids, eos, seed):
    """TextGen-v0's return and its component sums when fed `ids` (then EOS if no stop rule fired first)."""
    env.reset(seed=seed)
    total, components, queue = 0.0, {}, list(ids)
    while True:
        _, reward, terminated, _, info = env.step(queue.pop(0) if queue else eos)
        total += reward
        for key, value in info["reward_components"].items():
            components[key] = components.get(key, 0.0) + value
        if terminated:
            return total, components, info["text"]


@pytest.mark.parametrize("kl_coef", [0.0, 0.2], ids=["no-kl", "kl"])
@pytest.mark.parametrize("reward_mode", ["sparse", "dense"])
def test_rewards_equal_the_token_envs_for_the_same_completion(make_env, settings, tiny, reward_mode, kl_coef):
    reward = {"length": 1.0, "keyword": 2.0}
    kwargs = dict(reward=reward, reward_kwargs={"keyword": {"keywords": ["great"]}}, reward_mode=reward_mode)
    env = TextCompletionEnv(**settings, kl_coef=kl_coef, **kwargs)
    token_env = make_env(kl_coef=kl_coef, **kwargs)
    eos = tiny[1].eos_token_id
    rng = np.random.default_rng(0)
    completions = [[], [eos], rng.integers(3, 100, size=9).tolist()]  # empty, EOS only, longer than the budget
    completions += [rng.integers(3, 100, size=n).tolist() for n in (1, 3, 5)]
    completions += [[*rng.integers(3, 100, size=2).tolist(), eos, 7, 8]]  # tokens after EOS are ignored
    for seed, ids in enumerate(completions):
        env.reset(seed=seed)
        _, reward_value, terminated, truncated, info = env.step(env.pad(ids))
        expected, components, text = _token_env_return(token_env, ids, eos, seed)
        assert terminated and not truncated
        assert reward_value == pytest.approx(expected, abs=1e-9)
        assert info["reward_components"] == pytest.approx(components, abs=1e-9)
        assert info["text"] == text
        assert info["episode_return"] == pytest.approx(expected, abs=1e-9)


def test_a_text_action_scores_as_its_token_ids(settings, tiny):
    env = TextCompletionEnv(**settings, reward="keyword", reward_kwargs={"keywords": ["great"]})
    text = "the movie was great"
    env.reset(seed=3)
    _, from_text, _, _, text_info = env.step(text)
    env.reset(seed=3)
    _, from_ids, _, _, ids_info = env.step(tiny[1](text)["input_ids"])
    assert text_info["text"] == text and from_text == from_ids == pytest.approx(1.0)
    assert text_info["completion_ids"] == ids_info["completion_ids"]


def test_padding_and_what_follows_it_are_ignored(settings):
    env = TextCompletionEnv(**settings)
    env.reset(seed=0)
    _, _, _, _, short = env.step([10, 11])
    env.reset(seed=0)
    _, _, _, _, padded = env.step([10, 11, env.padding_id, 12, 13, 14])
    assert padded["completion_ids"] == short["completion_ids"] == [10, 11, env.eos_token_id]
    assert env.pad([10, 11]).tolist() == [10, 11, *[env.padding_id] * 4]


def test_ids_past_the_stop_rule_are_reported_as_ignored(settings):
    env = TextCompletionEnv(**settings)
    env.reset(seed=0)
    _, _, _, _, info = env.step(list(range(10, 19)))  # 9 ids, max_new_tokens=6
    assert info["completion_ids"] == list(range(10, 16))
    assert info["ignored_tokens"] == 3 and info["stop_reason"] == "max_new_tokens"


def test_reference_logprobs_are_reported_per_token(settings):
    env = TextCompletionEnv(**settings, kl_coef=0.5)
    env.reset(seed=0)
    _, reward, _, _, info = env.step([10, 11])
    assert len(info["reference_logprobs"]) == 3
    assert info["reward_components"]["kl"] == pytest.approx(0.5 * sum(info["reference_logprobs"]))
    assert reward == pytest.approx(sum(info["reward_components"].values()))


@pytest.mark.parametrize("observation_mode", ["tokens", "hidden"])
def test_checkers_pass_without_warnings(settings, observation_mode):
    env = TextCompletionEnv(**settings, observation_mode=observation_mode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env, skip_render_check=True)
        sb3_check_env(env)
    assert [str(w.message) for w in caught] == []


def test_gym_make_builds_it_and_reset_takes_a_prompt(settings):
    env = gym.make("TextCompletion-v0", **settings)
    assert isinstance(env.unwrapped, TextCompletionEnv)
    assert env.action_space == gym.spaces.MultiDiscrete([143] * 6)
    _, info = env.reset(seed=0, options={"prompt": "the film was"})
    assert info["prompt"] == "the film was"


def test_one_step_per_dialogue_reply_pays_the_token_dialogues_rewards(tiny):
    model, tokenizer = tiny
    settings = dict(model=model, tokenizer=tokenizer, max_reply_tokens=4, max_context_tokens=96, max_turns=3)
    env = CompletionWrapper(TextDialogueEnv(**settings))
    token_env = TextDialogueEnv(**settings)
    assert env.action_space == gym.spaces.MultiDiscrete([143] * 4)
    replies = [[10, 11], [12, 13, 14, 15, 16], []]
    env.reset(seed=1)
    token_env.reset(seed=1)
    for turn, ids in enumerate(replies, 1):  # noqa: B007  (turn is read after the loop)
        obs, reward, terminated, _, info = env.step(ids)
        expected, queue, ended = 0.0, list(ids), False
        while not ended:
            token_obs, token_reward, token_terminated, _, token_info = token_env.step(
                queue.pop(0) if queue else tokenizer.eos_token_id
            )
            expected += token_reward
            ended = token_terminated or token_info.get("reply_ended", False)
        assert reward == pytest.approx(expected, abs=1e-9)
        assert info["conversation"] == token_info["conversation"]
        assert all(np.array_equal(obs[key], token_obs[key]) for key in obs)
        assert terminated == token_terminated
        if terminated:  # the user ended the conversation (satisfied) or max_turns was reached
            break
    assert terminated and turn >= 2  # one step per reply: several replies, then the end


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"action_mode": "top_k"}, ValueError, "Expected action_mode='vocab'"),
        ({"stop_on_eos": False}, ValueError, "Expected stop_on_eos=True"),
        ({"max_new_tokens": 1}, ValueError, "Expected max_new_tokens"),
    ],
    ids=["top-k", "no-eos", "bad-config"],
)
def test_bad_settings_raise(settings, kwargs, error, match):
    with pytest.raises(error, match=match):
        TextCompletionEnv(**{**settings, **kwargs})


@pytest.mark.parametrize(
    ("action", "error", "match"),
    [
        ([[1, 2]], TypeError, "Expected the action to be a str or a 1-D sequence of token ids"),
        ([0.5, 1.5], TypeError, "Expected the action to be a str or a 1-D sequence of token ids"),
        ([5, -1], ValueError, r"Expected token ids in \[0, 142\]"),
        ([5, 143], ValueError, r"Expected token ids in \[0, 142\]"),
    ],
    ids=["2-d", "floats", "negative", "past-padding"],
)
def test_bad_actions_raise(settings, action, error, match):
    env = TextCompletionEnv(**settings)
    env.reset(seed=0)
    with pytest.raises(error, match=match):
        env.step(action)


def test_a_non_token_env_is_refused(make_edit_env):
    with pytest.raises(TypeError, match="Expected a token-level env of textgen_env"):
        CompletionWrapper(make_edit_env())
