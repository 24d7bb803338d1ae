"""End to end on tiny models, over real HTTP on 127.0.0.1: a synthetic user answers the page of a tiny model's
completions, a reward model trains on the log, and the ``reward-model`` reward ranks like the hidden preference."""

from __future__ import annotations

import pytest

from agents.reward_model import RewardModelConfig, train_reward_model
from textgen_env.feedback import FeedbackServer, ModelCompleter, QuestionBoard, SyntheticUser, read_feedback
from textgen_env.rewards import RewardModelReward


@pytest.mark.parametrize(("noise", "expected"), [(0.0, ["a", "b", "tie"]), (1e-6, ["a", "b"])], ids=["exact", "noisy"])
def test_synthetic_user_follows_its_hidden_reward(noise, expected):
    user = SyntheticUser("keyword", {"keywords": ["great"], "avoid": ["bad"]}, noise=noise)
    choices = [user.choose("p", "great", "bad"), user.choose("p", "bad", "great"), user.choose("p", "ok", "fine")]
    assert choices[: len(expected)] == expected
    assert user.rate("p", "great") == 5 and user.rate("p", "bad") == 1


def test_synthetic_user_answers_over_http_and_a_reward_model_learns(tmp_path, tiny, tiny_model_dir):
    httpx = pytest.importorskip("httpx", reason="the synthetic user needs httpx (textgen-env[feedback])")
    model, tokenizer = tiny
    completer = ModelCompleter(model, tokenizer, max_new_tokens=8, seed=0)
    prompts = [f"the {noun} was" for noun in ("movie", "film", "story", "plot", "music", "ending", "cast", "book")]
    board = QuestionBoard(tmp_path / "feedback.jsonl", completer=completer, prompts=prompts, mode="mixed")
    user = SyntheticUser("keyword", {"keywords": ["great", "good", "love", "best", "fun", "nice"]})
    with FeedbackServer(board) as server:
        assert server.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            counts = user.answer_page(server.url, 120, client=client)
    assert counts == {"pair": 60, "rating": 60}
    feedback = read_feedback(board.log_path)
    assert len(feedback.preferences) == 60 and len(feedback.ratings) == 60
    config = RewardModelConfig(base=str(tiny_model_dir), epochs=4, learning_rate=1e-3)
    report = train_reward_model(board.log_path, tmp_path / "rm", config, log=lambda *a: None)
    assert report["comparisons"] > 20
    scores = RewardModelReward(tmp_path / "rm")(["the movie was"] * 2, ["it was great", "it was the"], [True] * 2)
    assert scores[0] > scores[1]


@pytest.mark.slow
def test_reward_model_on_the_embedded_model(tmp_path, preference_log):
    """The embedded SmolLM2-135M as the trunk, one epoch (about a minute on 2 CPU cores)."""
    log = preference_log(tmp_path / "log.jsonl", n=12)
    config = RewardModelConfig(base="default", epochs=1, batch_size=4, learning_rate=2e-5, max_length=32)
    report = train_reward_model(log, tmp_path / "rm", config, log=lambda *a: None)
    assert (
        report["eval_comparisons"] > 0 and report["history"][-1]["eval"]["loss"] < report["history"][0]["eval"]["loss"]
    )
    scores = RewardModelReward(tmp_path / "rm")(["the movie was"] * 2, ["great fun", "awful and boring"], [True] * 2)
    assert scores.shape == (2,)
