"""TextGenVectorEnv: registration through make_vec, equality with N single envs, NEXT_STEP autoreset, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from textgen_env import TextGenEnv, TextGenVectorEnv

NUM_ENVS = 3


def _run_singles(make_env, seed, actions, **kwargs):
    """Step N single envs like a NEXT_STEP vector env would (reset on the step after an episode ends)."""
    envs = [make_env(**kwargs) for _ in range(NUM_ENVS)]
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    needs_reset = [False] * NUM_ENVS
    trace = [obs]
    for step_actions in actions:
        row = []
        for i, env in enumerate(envs):
            if needs_reset[i]:
                o, info = env.reset()
                r, term = 0.0, False
            else:
                o, r, term, _, info = env.step(int(step_actions[i]))
            needs_reset[i] = term
            row.append((o, r, term, info["text"]))
        trace.append(row)
    return trace


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reward": "keyword", "reward_mode": "dense"},
        {"action_mode": "top_k", "top_k": 4, "observation_mode": "hidden"},
        {"action_mode": "top_k", "top_k": 3, "stop_strings": ["."]},
    ],
    ids=["vocab-tokens-dense", "topk-hidden", "topk-tokens-stop"],
)
def test_vector_env_equals_single_envs(make_env, make_vec_env, kwargs):
    rng = np.random.default_rng(0)
    high = kwargs.get("top_k", 142)
    actions = rng.integers(0, high, size=(20, NUM_ENVS))
    vec = make_vec_env(NUM_ENVS, max_new_tokens=4, **kwargs)
    obs, infos = vec.reset(seed=11)
    singles = _run_singles(make_env, 11, actions, max_new_tokens=4, **kwargs)
    for i in range(NUM_ENVS):
        _assert_obs_equal(obs, i, singles[0][i])
    for t, step_actions in enumerate(actions):
        obs, rewards, terminated, truncated, infos = vec.step(step_actions)
        assert not truncated.any()
        for i in range(NUM_ENVS):
            single_obs, single_reward, single_term, single_text = singles[t + 1][i]
            _assert_obs_equal(obs, i, single_obs)
            assert rewards[i] == pytest.approx(single_reward, abs=1e-9)
            assert terminated[i] == single_term
            assert infos["text"][i] == single_text


def _assert_obs_equal(batched, i, single):
    if isinstance(single, dict):
        for key in single:
            np.testing.assert_array_equal(batched[key][i], single[key])
    else:
        np.testing.assert_allclose(batched[i], single, atol=1e-5)


def test_make_vec_uses_the_vector_entry_point(tiny):
    model, tokenizer = tiny
    vec = gym.make_vec("TextGen-v0", num_envs=4, model=model, tokenizer=tokenizer, max_new_tokens=3)
    assert isinstance(vec.unwrapped, TextGenVectorEnv) and vec.num_envs == 4
    obs, _info = vec.reset(seed=0)
    assert obs["input_ids"].shape == (4, 64 + 3)
    assert vec.observation_space.contains(obs)
    assert vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP


def test_next_step_autoreset(make_vec_env):
    vec = make_vec_env(2, max_new_tokens=2, prompts=["the dog", "the cat"])
    vec.reset(seed=0)
    vec.step(np.array([5, 5]))
    _, _, terminated, _, infos = vec.step(np.array([6, 6]))
    assert terminated.all() and list(infos["stop_reason"]) == ["max_new_tokens"] * 2
    obs, rewards, terminated, _, infos = vec.step(np.array([7, 7]))  # actions ignored: slots reset
    assert not terminated.any() and (rewards == 0).all() and list(infos["text"]) == ["", ""]
    assert (obs["attention_mask"].sum(axis=1) == 2).all()


@pytest.mark.parametrize("kl_coef", [0.0, 0.1], ids=["no-model", "kv-cached-model"])
def test_step_unfinished_keeps_finished_slots_finished_and_scores_nothing(make_vec_env, kl_coef):
    scored = []

    def reward(prompt: str, completion: str, done: bool) -> float:
        scored.append((completion, done))
        return 1.0 if done else 0.0

    vec = make_vec_env(2, max_new_tokens=3, prompts=["the dog", "the cat"], reward=reward, kl_coef=kl_coef)
    eos = vec.tokenizer.eos_token_id
    vec.reset(seed=0)
    vec.step_unfinished(np.array([5, 5]))
    _, _, terminated, _, _ = vec.step_unfinished(np.array([6, eos]))  # slot 1 ends a step before slot 0
    assert terminated.tolist() == [False, True]
    scored.clear()
    _, rewards, terminated, truncated, infos = vec.step_unfinished(np.array([7, 7]))
    assert terminated.tolist() == [True, False] and not truncated.any()  # slot 1 did not restart
    assert rewards[1] == 0.0 and len(scored) == 1  # only slot 0 was scored
    assert len(vec.batch.completion_ids[1]) == 2 and infos["text"][1] != ""
    with pytest.raises(gym.error.ResetNeeded, match=r"Expected an unfinished slot to step, got none"):
        vec.step_unfinished(np.array([7, 7]))
    vec.reset(seed=1)
    assert not vec.batch.done.any()


def test_one_model_forward_per_step_for_all_slots(make_vec_env, tiny):
    model, _ = tiny
    calls = []
    handle = model.register_forward_hook(lambda module, args, kwargs_out: calls.append(1))
    try:
        vec = make_vec_env(4, action_mode="top_k", top_k=2, max_new_tokens=5)
        vec.reset(seed=0)
        calls.clear()
        for _ in range(3):
            vec.step(np.zeros(4, dtype=np.int64))
    finally:
        handle.remove()
    assert len(calls) == 3


def test_vector_bad_input(make_vec_env):
    with pytest.raises(ValueError, match=r"Expected num_envs to be an int >= 1, got 0"):
        make_vec_env(0)
    vec = make_vec_env(2)
    with pytest.raises(gym.error.ResetNeeded, match=r"before TextGenVectorEnv\.reset"):
        vec.step(np.array([1, 1]))
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=r"Expected actions of shape \(2,\), got \(3,\)"):
        vec.step(np.array([1, 1, 1]))
    with pytest.raises(ValueError, match=r"Expected 2 seeds \(one per env\), got 1"):
        vec.reset(seed=[1])


def test_single_env_class_is_registered(tiny):
    env = gym.make("TextGen-v0", model=tiny[0], tokenizer=tiny[1])
    assert isinstance(env.unwrapped, TextGenEnv)


HELD_MODES = [
    {"action_mode": "top_k", "top_k": 4, "observation_mode": "hidden", "reward": "keyword", "reward_mode": "dense"},
    {"observation_mode": "hidden", "kl_coef": 0.1, "reward_mode": "dense"},
    {"action_mode": "top_k", "top_k": 3, "stop_strings": ["."]},
]
HELD_IDS = ["topk-hidden-dense", "vocab-hidden-kl", "topk-tokens-stop"]


def _actions(vec, rng):
    return rng.integers(0, vec.single_action_space.n, size=vec.num_envs)


@pytest.mark.parametrize("kwargs", HELD_MODES, ids=HELD_IDS)
def test_masked_reset_leaves_the_other_slots_exactly_as_they_were(make_vec_env, kwargs):
    partial, plain = (make_vec_env(NUM_ENVS, max_new_tokens=5, **kwargs) for _ in range(2))
    partial.reset(seed=3)
    plain.reset(seed=3)
    rng = np.random.default_rng(1)
    held = slice(1, None)  # slot 0 is reset mid-episode, slots 1 and 2 hold
    for t in range(14):
        if t == 2:
            mask = np.array([True, False, False])
            obs, infos = partial.reset(seed=40, options={"reset_mask": mask})
            assert infos["_prompt"].tolist() == mask.tolist()  # infos only of the reset slot
            assert not partial.batch.done.any()
            rewards = np.zeros(NUM_ENVS)
        else:
            actions = _actions(plain, rng)
            obs, rewards, terminated, _, infos = partial.step(actions)
            plain_obs, plain_rewards, plain_terminated, _, plain_infos = plain.step(actions)
            np.testing.assert_allclose(rewards[held], plain_rewards[held], atol=1e-5, rtol=0)
            assert terminated[held].tolist() == plain_terminated[held].tolist()
            assert list(infos["text"][held]) == list(plain_infos["text"][held])
        plain_obs = plain.batch.observation()
        if isinstance(obs, dict):
            np.testing.assert_array_equal(obs["input_ids"][held], plain_obs["input_ids"][held])
        else:
            np.testing.assert_allclose(obs[held], plain_obs[held], atol=1e-5)
        torch.testing.assert_close(partial.batch.logits[held], plain.batch.logits[held], atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(partial.batch.returns[held], plain.batch.returns[held], atol=1e-5, rtol=0)
        np.testing.assert_allclose(
            partial.batch.reference_logprobs[held], plain.batch.reference_logprobs[held], atol=1e-5, rtol=0
        )
        assert rewards.shape == (NUM_ENVS,)


@pytest.mark.parametrize("slot", [0, 2], ids=["first-slot", "last-slot"])
def test_masked_reset_seeds_the_reset_slot_like_a_single_env(make_env, make_vec_env, slot):
    kwargs = {"action_mode": "top_k", "top_k": 3, "observation_mode": "hidden", "max_new_tokens": 4}
    vec = make_vec_env(NUM_ENVS, **kwargs)
    vec.reset(seed=0)
    vec.step(np.zeros(NUM_ENVS, dtype=np.int64))
    mask = np.arange(NUM_ENVS) == slot
    obs, infos = vec.reset(seed=50, options={"reset_mask": mask})
    single = make_env(**kwargs)
    single_obs, single_info = single.reset(seed=50 + slot)  # an int seed gives slot i seed + i
    assert infos["prompt"][slot] == single_info["prompt"]
    np.testing.assert_allclose(obs[slot], single_obs, atol=1e-5)
    rng = np.random.default_rng(2)
    for _ in range(8):  # the reset slot's episodes and autoresets follow the single env's
        actions = rng.integers(0, 3, size=NUM_ENVS)
        obs, reward, terminated, _, infos = vec.step(actions)
        if single.batch.done[0]:
            single_obs, single_info = single.reset()
            single_reward, single_terminated = 0.0, False
        else:
            single_obs, single_reward, single_terminated, _, single_info = single.step(int(actions[slot]))
        np.testing.assert_allclose(obs[slot], single_obs, atol=1e-5)
        assert reward[slot] == pytest.approx(single_reward) and terminated[slot] == single_terminated
        assert infos["text"][slot] == single_info["text"]


def test_masked_reset_clears_only_the_reset_slots_autoreset(make_vec_env):
    vec = make_vec_env(2, max_new_tokens=2, prompts=["the dog", "the cat"])
    vec.reset(seed=0)
    vec.step(np.array([5, 5]))
    _, _, terminated, _, _ = vec.step(np.array([6, 6]))
    assert terminated.all()
    vec.reset(options={"reset_mask": np.array([True, False])})
    _, rewards, _, _, infos = vec.step(np.array([7, 7]))
    assert infos["text"][0] != "" and infos["text"][1] == ""  # slot 0 stepped, slot 1 autoreset
    assert rewards[1] == 0.0 and "prompt_tokens" in infos and infos["_prompt_tokens"].tolist() == [False, True]


def test_prompt_options_of_the_vector_env(make_vec_env):
    vec = make_vec_env(NUM_ENVS, prompts=["the dog"])
    _, infos = vec.reset(seed=0, options={"prompt": "a story"})
    assert list(infos["prompt"]) == ["a story"] * NUM_ENVS
    given = ["the movie was", None, "once"]
    obs, infos = vec.reset(options={"prompt": given})
    assert list(infos["prompt"]) == ["the movie was", "the dog", "once"]
    ids = vec.tokenizer("once")["input_ids"]
    assert obs["input_ids"][2, -len(ids) :].tolist() == ids and obs["attention_mask"][2].sum() == len(ids)
    mask = np.array([False, True, False])
    _, infos = vec.reset(options={"reset_mask": mask, "prompt": ["ignored", "it was", "ignored"]})
    assert infos["prompt"][1] == "it was" and vec.batch.prompts[0].text == "the movie was"
