"""The LM judge: yes-probability and parsed scores, batching that changes nothing, a bounded cache, ranks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textgen_env.rewards import JudgeReward, make_reward

PROMPTS = ["the movie was", "the movie was", "i think the film", "the story"]
COMPLETIONS = ["great fun", "bad and dull", "was very good , i loved it", "was sad"]


@pytest.fixture
def judge(tiny):
    model, tokenizer = tiny
    return JudgeReward("is the reply good ?", model=model, tokenizer=tokenizer, answers=("good", "bad"), batch_size=3)


def test_yes_probability_is_the_normalised_next_token_probability(judge, tiny):
    model, tokenizer = tiny
    scores = judge(PROMPTS[:1], COMPLETIONS[:1], [True])
    ids = tokenizer(judge.judge_prompt(PROMPTS[0], COMPLETIONS[0]))["input_ids"]
    with torch.no_grad():
        logprobs = model(torch.tensor([ids])).logits[0, -1].log_softmax(-1)
    good, bad = tokenizer.convert_tokens_to_ids(["good", "bad"])
    expected = torch.sigmoid(logprobs[good] - logprobs[bad]).item()
    assert scores[0] == pytest.approx(expected, abs=1e-5)


def test_batched_scores_equal_one_at_a_time(judge, tiny):
    model, tokenizer = tiny
    batched = judge(PROMPTS, COMPLETIONS, [True] * 4)
    alone = JudgeReward("is the reply good ?", model=model, tokenizer=tokenizer, answers=("good", "bad"), batch_size=1)
    np.testing.assert_allclose(batched, alone(PROMPTS, COMPLETIONS, [True] * 4), atol=1e-5)
    assert ((batched >= 0) & (batched <= 1)).all()


def test_each_pair_is_judged_once_and_the_cache_is_bounded(tiny, monkeypatch):
    model, tokenizer = tiny
    judge = JudgeReward("good ?", model=model, tokenizer=tokenizer, answers=("good", "bad"), cache_size=2)
    judged: list[tuple[str, str]] = []
    original = judge._judge
    monkeypatch.setattr(judge, "_judge", lambda pairs: judged.extend(pairs) or original(pairs))
    first = judge(PROMPTS[:2], COMPLETIONS[:2], [True] * 2)
    again = judge(PROMPTS[:2] * 2, COMPLETIONS[:2] * 2, [True] * 4)
    assert judged == list(zip(PROMPTS[:2], COMPLETIONS[:2]))  # the repeat came from the cache
    np.testing.assert_allclose(again, np.tile(first, 2))
    judge(PROMPTS, COMPLETIONS, [True] * 4)
    assert len(judge._cache) == 2


def test_braces_in_texts_are_never_template_fields(judge):
    text = judge.judge_prompt("say {completion}", "{rubric} {prompt}")
    assert "Request: say {completion}" in text and "Reply: {rubric} {prompt}" in text


def test_score_mode_parses_the_first_number_and_counts_answers_without_one(tiny):
    model, tokenizer = tiny
    judge = JudgeReward("good ?", model=model, tokenizer=tokenizer, mode="score", unparsed_score=0.25)
    # the tiny model's vocabulary has no digits, so no answer can hold a number
    np.testing.assert_allclose(judge(PROMPTS, COMPLETIONS, [True] * 4), 0.25)
    assert judge.unparsed == 4
    assert judge._parse("I give it 7 out of 10") == pytest.approx(0.7)
    assert judge._parse("15") == 1.0


def test_ranked_form_ranks_the_group_by_the_judge(judge):
    scores = judge(PROMPTS, COMPLETIONS, [True] * 4)
    ranks = judge.ranked().score_group(PROMPTS, COMPLETIONS)
    assert list(np.argsort(ranks)) == list(np.argsort(scores))
    assert set(ranks) == {0.0, 1 / 3, 2 / 3, 1.0}


def test_judge_by_name(tiny):
    model, tokenizer = tiny
    judge = make_reward(
        "judge", {"rubric": "good ?", "model": model, "tokenizer": tokenizer, "answers": ["good", "bad"]}
    )
    assert isinstance(judge, JudgeReward)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "vibes"}, "Expected mode to be one of"),
        ({"template": "no field"}, "containing '{completion}'"),
        ({"rubric": " "}, "non-empty question"),
        ({"answers": ("yes",)}, "two non-empty words"),
        ({"cache_size": -1}, "cache_size to be an int >= 0"),
        ({"unparsed_score": 2.0}, "unparsed_score to be a number in \\[0, 1\\]"),
    ],
    ids=["mode", "template", "rubric", "answers", "cache", "unparsed"],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        JudgeReward(**{"rubric": "good ?", **kwargs})


def test_answers_that_are_not_single_tokens_raise_on_first_use(tiny):
    model, tokenizer = tiny
    judge = JudgeReward("good ?", model=model, tokenizer=tokenizer)  # the tiny vocabulary has no 'yes'
    with pytest.raises(ValueError, match="single-token spellings of 'yes' and 'no'"):
        judge(PROMPTS[:1], COMPLETIONS[:1], [True])


@pytest.mark.slow
def test_default_judge_prefers_the_positive_review():
    judge = JudgeReward("Is the reply positive about the movie?")
    scores = judge(["Review: the movie was"] * 2, ["wonderful, I loved every minute", "awful, I hated it"], [True] * 2)
    assert scores[0] > scores[1]
