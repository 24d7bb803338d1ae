"""render_mode="rgb_array": fixed-size pictures, Gymnasium's checker, SB3's make_vec_env and RecordVideo."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

from textgen_env.rendering import _HIGHLIGHT, FRAME_HEIGHT, FRAME_WIDTH, render_frame

FRAME_SHAPE = (FRAME_HEIGHT, FRAME_WIDTH, 3)
TEXTS = [
    ("", "", ""),
    ("the movie was", " great", " great"),
    ("the movie was " * 400, "and the acting was great " * 400 + "fun", "fun"),
    ("a" * 3000, "b" * 3000, "b"),
    ("line one\nline two\n\n\nline five", "first\nsecond\n", "\n"),
    ("caf\u00e9 \u4e2d\u6587 \U0001f600", " \u00fcber \u4e2d", " \u4e2d"),
]
TEXT_IDS = ["empty", "short", "very-long-words", "one-huge-word", "newlines", "non-latin"]


def _highlighted_pixels(frame: np.ndarray) -> int:
    """Pixels of the newest-token highlight colour above the status bar."""
    return int((frame[: FRAME_HEIGHT - 80] == _HIGHLIGHT).all(axis=-1).sum())


@pytest.mark.parametrize(("prompt", "completion", "newest"), TEXTS, ids=TEXT_IDS)
def test_frame_has_a_fixed_shape_whatever_the_text(prompt, completion, newest):
    frame = render_frame(prompt, completion, newest, -1.5, 1e6, tokens=3, max_tokens=32, stop_reason="eos")
    assert frame.shape == FRAME_SHAPE and frame.dtype == np.uint8


def test_newest_token_is_highlighted():
    before = render_frame("the movie was", "", "", 0.0, 0.0, tokens=0, max_tokens=8, stop_reason=None)
    after = render_frame("the movie was", " great", " great", 0.0, 0.0, tokens=1, max_tokens=8, stop_reason=None)
    spaces = render_frame("the movie was", " great ", " ", 0.0, 0.0, tokens=2, max_tokens=8, stop_reason=None)
    assert _highlighted_pixels(before) == 0
    assert _highlighted_pixels(after) > _highlighted_pixels(spaces) > 0


@pytest.mark.parametrize("vector", [False, True], ids=["env", "vector-env"])
def test_a_new_token_changes_the_picture(make_env, make_vec_env, tiny, vector):
    great = tiny[1].convert_tokens_to_ids("great")
    if vector:
        env = make_vec_env(2, render_mode="rgb_array", prompts=["the movie was"])
        env.reset(seed=0)
        first = env.render()
        env.step(np.array([great, great]))
        second = env.render()
        assert isinstance(first, tuple) and len(first) == 2
        assert all(frame.shape == FRAME_SHAPE and frame.dtype == np.uint8 for frame in first + second)
        first, second = first[0], second[0]
    else:
        env = make_env(render_mode="rgb_array", prompts=["the movie was"])
        env.reset(seed=0)
        first = env.render()
        env.step(great)
        second = env.render()
    assert first.shape == second.shape == FRAME_SHAPE
    assert not np.array_equal(first, second)
    assert _highlighted_pixels(first) == 0 < _highlighted_pixels(second)


def test_metadata_lists_rgb_array(make_env, make_vec_env):
    for env in (make_env(), make_vec_env(1)):
        assert "rgb_array" in env.metadata["render_modes"] and env.metadata["render_fps"] == 4


@pytest.mark.parametrize(
    ("action_mode", "observation_mode"),
    [("vocab", "tokens"), ("top_k", "hidden")],
    ids=["vocab-tokens", "top_k-hidden"],
)
def test_gymnasium_checker_passes_with_rgb_array(tiny, action_mode, observation_mode):
    import textgen_env  # noqa: F401 (registers TextGen-v0)

    model, tokenizer = tiny
    env = gym.make(  # through the registry, so that the checker also tries the other render modes
        "TextGen-v0",
        model=model,
        tokenizer=tokenizer,
        max_new_tokens=6,
        max_prompt_tokens=16,
        render_mode="rgb_array",
        action_mode=action_mode,
        observation_mode=observation_mode,
        top_k=5,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped)  # render check included
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize(
    "vec_env", ["dummy", pytest.param("subproc", marks=pytest.mark.slow)], ids=["DummyVecEnv", "SubprocVecEnv"]
)
def test_sb3_make_vec_env_renders(tiny_model_dir, vec_env):
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    import textgen_env  # noqa: F401 (registers TextGen-v0)

    kwargs = dict(model=tiny_model_dir, max_new_tokens=4, max_prompt_tokens=8, prompts=["the movie was"])
    kwargs.update(action_mode="top_k", observation_mode="hidden", top_k=3)
    if vec_env == "dummy":
        env = make_vec_env("TextGen-v0", n_envs=2, env_kwargs=kwargs, vec_env_cls=DummyVecEnv)
    else:  # spawned workers load the model from its folder; "module:id" makes them import (register) textgen_env
        env = make_vec_env(
            "textgen_env:TextGen-v0",
            n_envs=2,
            env_kwargs=kwargs,
            vec_env_cls=SubprocVecEnv,
            vec_env_kwargs={"start_method": "spawn"},
        )
    try:
        assert env.render_mode == "rgb_array"  # make_vec_env asked for it and the env accepted
        obs = env.reset()
        assert obs.shape == (2, 32)
        ended = np.zeros(2, dtype=bool)
        for _ in range(6):  # past one episode end: autoreset inside the VecEnv
            obs, _, dones, _ = env.step(np.array([0, 1]))
            ended |= dones
        assert ended.all() and obs.shape == (2, 32)
        images = env.get_images()
        assert len(images) == 2 and all(image.shape == FRAME_SHAPE for image in images)
        tiled = env.render()
        assert tiled is not None and tiled.dtype == np.uint8 and tiled.shape[-1] == 3
    finally:
        env.close()


def test_record_video_writes_an_mp4(tiny, tmp_path):
    pytest.importorskip("moviepy")
    from gymnasium.wrappers import RecordVideo

    import textgen_env  # noqa: F401 (registers TextGen-v0)

    model, tokenizer = tiny
    env = gym.make(
        "TextGen-v0", model=model, tokenizer=tokenizer, max_new_tokens=5, max_prompt_tokens=8, render_mode="rgb_array"
    )
    env = RecordVideo(env, str(tmp_path / "videos"), episode_trigger=lambda episode: True, disable_logger=True)
    env.reset(seed=0)
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
    env.close()
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000
