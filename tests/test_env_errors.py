"""TextGenEnv bad input: each error names the argument, what was expected and what was given."""

from __future__ import annotations

import math

import numpy as np
import pytest

from textgen_env.testing import tiny_model


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_new_tokens": 1}, ValueError, r"Expected max_new_tokens to be an int >= 2, got 1"),
        ({"max_prompt_tokens": 0}, ValueError, r"Expected max_prompt_tokens to be an int >= 1, got 0"),
        ({"reward": "nonsense"}, ValueError, r"Expected reward to be one of \[.*'keyword'.*\].*got 'nonsense'"),
        ({"reward_mode": "often"}, ValueError, r"Expected reward_mode to be one of \['sparse', 'dense'\], got 'often'"),
        ({"action_mode": "words"}, ValueError, r"Expected action_mode to be one of \['vocab', 'top_k'\], got 'words'"),
        ({"observation_mode": "pixels"}, ValueError, r"observation_mode to be one of \['tokens', 'hidden'\]"),
        ({"render_mode": "rgb"}, ValueError, r"render_mode to be one of \['human', 'ansi', 'rgb_array'\], got 'rgb'"),
        ({"prompts": "no_such_set"}, ValueError, r"built-in set name \(movie_reviews, stories, facts.*'no_such_set'"),
        ({"prompts": "movie_reviews:test"}, ValueError, r"Expected a split in \('train', 'eval'\).*got 'test'"),
        ({"prompts": []}, ValueError, r"Expected prompts to hold at least one string, got an empty list"),
        ({"prompts": ["ok", 3]}, TypeError, r"Expected prompts to be a list of str, got an item of type int"),
        ({"prompts": "missing/file.txt"}, FileNotFoundError, r"readable \.txt or \.jsonl file, got 'missing/file.txt'"),
        ({"top_k": 0, "action_mode": "top_k"}, ValueError, r"Expected top_k to be an int >= 1, got 0"),
        ({"mask_top_p": 1.5}, ValueError, r"Expected mask_top_p to be a float in \(0, 1\], got 1.5"),
        ({"stop_strings": [""]}, ValueError, r"Expected stop_strings to be non-empty strings"),
        ({"dtype": "float99"}, ValueError, r"Expected dtype to be a torch dtype name"),
        ({"reward": {"keyword": math.nan}}, ValueError, r"Expected a finite number as the weight of reward"),
    ],
    ids=[
        "max_new_tokens",
        "max_prompt_tokens",
        "unknown-reward",
        "reward-mode",
        "action-mode",
        "observation-mode",
        "render-mode",
        "unknown-prompt-set",
        "unknown-split",
        "empty-prompts",
        "non-str-prompt",
        "missing-file",
        "top-k",
        "mask-top-p",
        "empty-stop-string",
        "dtype",
        "nan-weight",
    ],
)
def test_bad_constructor_arguments(make_env, kwargs, error, match):
    with pytest.raises(error, match=match):
        make_env(**kwargs)


def test_empty_prompt_file(make_env, tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n\n")
    with pytest.raises(ValueError, match=r"Expected at least one prompt in .*empty.txt.*got an empty file"):
        make_env(prompts=str(path))


def test_tokenizer_that_does_not_match_the_model(make_env, tiny):
    with pytest.raises(ValueError, match=r"vocabulary matches the model \(5000 embedding rows\).*142 tokens"):
        make_env(model=tiny_model(vocab_size=5000))
    with pytest.raises(ValueError, match=r"\(100 embedding rows\), got a tokenizer with 142 tokens"):
        make_env(model=tiny_model(vocab_size=100))


@pytest.mark.parametrize(
    ("action", "error", "match"),
    [
        (10_000, ValueError, r"Expected actions in \[0, 142\), got 10000"),
        (-1, ValueError, r"Expected actions in \[0, 142\), got -1"),
        ("great", TypeError, r"Expected action to be an int, got str 'great'"),
        (np.array([1, 2]), TypeError, r"Expected action to be an int, got ndarray"),
        (2.5, TypeError, r"Expected integer actions, got float64"),
        (None, TypeError, r"Expected action to be an int, got NoneType"),
    ],
    ids=["too-large", "negative", "string", "array", "fraction", "none"],
)
def test_bad_actions(make_env, action, error, match):
    env = make_env()
    env.reset(seed=0)
    with pytest.raises(error, match=match):
        env.step(action)


def test_top_k_action_out_of_range(make_env):
    env = make_env(action_mode="top_k", top_k=4)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"Expected actions in \[0, 4\), got 4"):
        env.step(4)


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (math.nan, ValueError, r"reward 'bad' to return finite numbers, got nan for prompt 'the movie'"),
        (math.inf, ValueError, r"reward 'bad' to return finite numbers, got inf for prompt 'the movie'"),
        ("high", TypeError, r"reward 'bad' to return a number, got str 'high' for prompt 'the movie'"),
        (None, TypeError, r"reward 'bad' to return a number, got NoneType None for prompt 'the movie'"),
    ],
    ids=["nan", "inf", "string", "none"],
)
def test_reward_returning_garbage_names_the_reward_and_prompt(make_env, value, error, match):
    def bad(prompt, completion, done):
        return value

    env = make_env(reward=bad, reward_mode="dense", prompts=["the movie"])
    env.reset(seed=0)
    with pytest.raises(error, match=match):
        env.step(5)


def test_episode_longer_than_the_model_accepts(make_env):
    with pytest.raises(
        ValueError, match=r"Expected max_prompt_tokens \+ max_new_tokens <= the model's 16 positions, got 22"
    ):
        make_env(model=tiny_model(n_positions=16))
