"""TextGenEnv: Gymnasium and SB3 checkers, spaces, seeding, termination, rewards, model-backed modes, bad input."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

MODES = [("vocab", "tokens"), ("vocab", "hidden"), ("top_k", "tokens"), ("top_k", "hidden")]
MODE_IDS = [f"{a}-{o}" for a, o in MODES]


def _plain_forward(model, ids: list[int]):
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=True)
    return out.logits[0, -1], out.hidden_states[-1][0, -1]


def _prompt_ids(obs) -> list[int]:
    return obs["input_ids"][obs["attention_mask"].astype(bool)].tolist()


@pytest.mark.parametrize(("action_mode", "observation_mode"), MODES, ids=MODE_IDS)
def test_checkers_pass_without_warnings(make_env, action_mode, observation_mode):
    env = make_env(action_mode=action_mode, observation_mode=observation_mode, top_k=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env, skip_render_check=True)
        sb3_check_env(env)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize(("action_mode", "observation_mode"), MODES, ids=MODE_IDS)
def test_spaces(make_env, tiny, action_mode, observation_mode):
    env = make_env(action_mode=action_mode, observation_mode=observation_mode, top_k=5)
    expected_actions = 5 if action_mode == "top_k" else len(tiny[1])
    assert env.action_space == gym.spaces.Discrete(expected_actions)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    if observation_mode == "tokens":
        assert obs["input_ids"].shape == (16 + 6,) and obs["input_ids"].dtype == np.int64
        assert obs["attention_mask"].dtype == np.int8
    else:
        assert obs.shape == (32,) and obs.dtype == np.float32


def test_observation_is_left_padded_and_grows_by_the_chosen_token(make_env, tiny):
    env = make_env(prompts=["the movie was"])
    obs, info = env.reset(seed=0)
    pad = tiny[1].pad_token_id
    assert obs["input_ids"][0] == pad and obs["attention_mask"][0] == 0
    assert _prompt_ids(obs) == tiny[1]("the movie was")["input_ids"]
    assert info == {"prompt": "the movie was", "text": "", "prompt_tokens": 3}
    great = tiny[1].convert_tokens_to_ids("great")
    obs, _, _, _, info = env.step(great)
    assert obs["input_ids"][-1] == great and obs["attention_mask"][-4:].tolist() == [1, 1, 1, 1]
    assert info["token"] == "great" and info["text"] == "great"


def test_same_seed_same_episode(make_env):
    def run(seed):
        env = make_env(action_mode="top_k", top_k=4, observation_mode="hidden")
        obs, info = env.reset(seed=seed)
        trace = [info["prompt"], obs.tolist()]
        for action in [0, 3, 1, 2, 0, 1]:
            obs, reward, term, _trunc, info = env.step(action)
            trace.append((obs.tolist(), reward, term, info["text"]))
        return trace

    assert run(7) == run(7)
    prompts = {run(seed)[0] for seed in range(6)}
    assert len(prompts) > 1  # the seed does drive prompt choice


def test_episode_ends_at_max_new_tokens_and_then_needs_reset(make_env):
    env = make_env(max_new_tokens=3)
    env.reset(seed=0)
    results = [env.step(10) for _ in range(3)]
    assert [r[2] for r in results] == [False, False, True]
    assert results[-1][4]["stop_reason"] == "max_new_tokens"
    with pytest.raises(ResetNeeded, match=r"after the episode ended"):
        env.step(10)


def test_step_before_reset_raises(make_env):
    with pytest.raises(ResetNeeded, match=r"before TextGenEnv\.reset"):
        make_env().step(0)


def test_eos_and_stop_strings_end_the_episode(make_env, tiny):
    tokenizer = tiny[1]
    env = make_env()
    env.reset(seed=0)
    _, _, terminated, _, info = env.step(tokenizer.eos_token_id)
    assert terminated and info["stop_reason"] == "eos"
    env = make_env(stop_strings=["!"])
    env.reset(seed=0)
    assert env.step(tokenizer.convert_tokens_to_ids("the"))[2] is False
    _, _, terminated, _, info = env.step(tokenizer.convert_tokens_to_ids("!"))
    assert terminated and info["stop_reason"] == "stop_string"


def test_sparse_reward_paid_at_the_end_and_dense_sums_to_it(make_env, tiny):
    tokenizer = tiny[1]
    words = ["the", "great", "movie", "love", "and", "good"]
    actions = [tokenizer.convert_tokens_to_ids(w) for w in words]
    returns = {}
    for mode in ("sparse", "dense"):
        env = make_env(reward="keyword", reward_mode=mode)
        env.reset(seed=0)
        rewards = [env.step(a)[1] for a in actions]
        returns[mode] = rewards
    assert returns["sparse"][:-1] == [0.0] * 5 and returns["sparse"][-1] == pytest.approx(1.0)
    assert returns["dense"][1] == pytest.approx(1 / 3)  # "great" appears: one of three keywords
    assert sum(returns["dense"]) == pytest.approx(returns["sparse"][-1])


def test_callable_reward_and_components_sum_to_reward(make_env):
    def excited(prompt: str, completion: str, done: bool) -> float:
        return float(completion.count("!"))

    env = make_env(reward={"keyword": 2.0, excited: 0.5}, reward_mode="dense", prompts=["hello"])
    env.reset(seed=0)
    for word in ["great", "!", "!"]:
        _, reward, _, _, info = env.step(env.unwrapped.tokenizer.convert_tokens_to_ids(word))
        assert set(info["reward_components"]) == {"keyword", "excited"}
        assert sum(info["reward_components"].values()) == pytest.approx(reward)
    assert info["reward_components"]["excited"] == pytest.approx(0.5)


def test_top_k_action_is_the_kth_most_likely_token(make_env, tiny):
    model, tokenizer = tiny
    env = make_env(action_mode="top_k", top_k=5, prompts=["once upon a time"])
    obs, _ = env.reset(seed=0)
    ids = tokenizer("once upon a time")["input_ids"]
    for action in [2, 0, 4]:
        logits, _ = _plain_forward(model, ids)
        expected = torch.topk(logits[: len(tokenizer)], 5).indices[action].item()
        obs, *_ = env.step(action)
        ids.append(expected)
        assert _prompt_ids(obs) == ids


def test_hidden_observation_equals_plain_forward(make_env, tiny):
    model, tokenizer = tiny
    env = make_env(observation_mode="hidden", prompts=["the old king said"])
    obs, _ = env.reset(seed=0)
    ids = tokenizer("the old king said")["input_ids"]
    np.testing.assert_allclose(obs, _plain_forward(model, ids)[1].numpy(), atol=1e-5)
    for token in [5, 17, 33]:
        obs, *_ = env.step(token)
        ids.append(token)
        np.testing.assert_allclose(obs, _plain_forward(model, ids)[1].numpy(), atol=1e-5)


@pytest.mark.parametrize(("top_k", "top_p"), [(3, None), (None, 0.5), (10, 0.9)], ids=["k3", "p0.5", "k10-p0.9"])
def test_action_masks_match_naive_top_k_top_p(make_env, tiny, top_k, top_p):
    model, tokenizer = tiny
    env = make_env(mask_top_k=top_k, mask_top_p=top_p, prompts=["the film"])
    env.reset(seed=0)
    mask = env.action_masks()
    logits, _ = _plain_forward(model, tokenizer("the film")["input_ids"])
    probs = torch.softmax(logits[: len(tokenizer)], -1).numpy()
    order = np.argsort(-probs)
    expected = np.ones(len(tokenizer), dtype=bool)
    if top_k is not None:
        expected &= np.isin(np.arange(len(tokenizer)), order[:top_k])
    if top_p is not None:
        keep, mass = [], 0.0
        for token in order:
            if mass >= top_p:
                break
            keep.append(token)
            mass += probs[token]
        expected &= np.isin(np.arange(len(tokenizer)), keep)
    assert mask.dtype == bool and mask.shape == (len(tokenizer),)
    np.testing.assert_array_equal(mask, expected)


def test_action_masks_allow_everything_when_unset(make_env, tiny):
    env = make_env()
    env.reset(seed=0)
    assert env.action_masks().all() and env.action_masks().shape == (len(tiny[1]),)


@pytest.mark.parametrize("mode", ["ansi", "human"], ids=["ansi", "human"])
def test_render_shows_prompt_completion_and_reward(make_env, capsys, mode):
    env = make_env(render_mode=mode, prompts=["the movie was"], reward="keyword")
    env.reset(seed=0)
    env.step(env.unwrapped.tokenizer.convert_tokens_to_ids("great"))
    text = env.render() if mode == "ansi" else capsys.readouterr().out
    assert "Prompt:     the movie was" in text and "Completion: great" in text and "Reward:" in text


def test_long_prompt_is_left_truncated_with_a_warning(make_env, tiny):
    long_prompt = " ".join(["the movie"] * 20)
    env = make_env(prompts=[long_prompt], max_prompt_tokens=8)
    with pytest.warns(UserWarning, match="longer than max_prompt_tokens=8"):
        obs, info = env.reset(seed=0)
    assert info["prompt_tokens"] == 8 and _prompt_ids(obs) == tiny[1](long_prompt)["input_ids"][-8:]


def test_prompt_from_callable_uses_the_env_generator(make_env):
    env = make_env(prompts=lambda rng: f"the {['dog', 'cat', 'king'][rng.integers(3)]} was")
    seen = [env.reset(seed=s)[1]["prompt"] for s in range(12)]
    assert len(set(seen)) > 1 and seen == [env.reset(seed=s)[1]["prompt"] for s in range(12)]


@pytest.mark.parametrize(("action_mode", "observation_mode"), MODES, ids=MODE_IDS)
def test_reset_option_prompt_starts_from_the_given_text(make_env, tiny, action_mode, observation_mode):
    kwargs = {"action_mode": action_mode, "observation_mode": observation_mode, "reward": "keyword"}
    env = make_env(prompts=["the dog"], **kwargs)
    obs, info = env.reset(seed=0, options={"prompt": "the movie was"})
    assert info["prompt"] == "the movie was" and env.batch.prompts[0].references == ()
    listed = make_env(prompts=["the movie was"], **kwargs)  # the same prompt drawn from a source
    listed_obs, _ = listed.reset(seed=0)
    for _ in range(3):
        if observation_mode == "hidden":
            np.testing.assert_allclose(obs, listed_obs, atol=1e-5)
        else:
            assert _prompt_ids(obs) == _prompt_ids(listed_obs)
        obs, reward, _, _, info = env.step(1)
        listed_obs, listed_reward, _, _, listed_info = listed.step(1)
        assert reward == pytest.approx(listed_reward) and info["text"] == listed_info["text"]
    _, info = env.reset()
    assert info["prompt"] == "the dog"  # without the option the source is drawn from again
