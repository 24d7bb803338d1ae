"""Held-out task evaluation: accuracy at T=1 with SE over items, greedy, pass@k, format, by difficulty, paired gains."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agents.evaluation.tasks import TaskEvalResult, evaluate_task, held_out_items, paired_task_gain
from agents.policy import LMPolicy
from textgen_env import TextGenVectorEnv
from textgen_env.tasks import is_eval_item, make_task
from textgen_env.testing import tiny_math_model_and_tokenizer


@pytest.fixture(scope="module")
def task_env_and_policy():
    model, tokenizer = tiny_math_model_and_tokenizer()
    env = TextGenVectorEnv(
        num_envs=1, model=model, tokenizer=tokenizer, task="arithmetic", max_prompt_tokens=40, max_new_tokens=3
    )
    return env, LMPolicy(model, tokenizer, value_head=False, reference=model)


def _result(correct: list[list[float]], greedy: list[float], levels: list[int]) -> TaskEvalResult:
    n, k = len(correct), len(correct[0])
    return TaskEvalResult(
        task="t",
        samples_per_item=k,
        temperature=1.0,
        seed=0,
        difficulties=levels,
        questions=[f"q{i}" for i in range(n)],
        answers=["1"] * n,
        sampled_correct=correct,
        sampled_format=correct,
        greedy_correct=greedy,
        greedy_format=greedy,
        kls=[[0.5] * k for _ in range(n)],
        lengths=[[2] * k for _ in range(n)],
    )


def test_accuracy_is_the_mean_over_items_and_its_se_treats_an_item_as_one_unit():
    result = _result([[1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], [1, 1, 0], [1, 1, 2])
    s = result.summary()
    per_item = np.array([0.25, 1.0, 0.0])
    assert s["accuracy"] == pytest.approx(per_item.mean())
    assert s["accuracy_se"] == pytest.approx(per_item.std(ddof=1) / math.sqrt(3))
    assert s["pass_at_k"] == pytest.approx(2 / 3) and s["greedy_accuracy"] == pytest.approx(2 / 3)
    assert s["by_difficulty"]["1"]["items"] == 2 and s["by_difficulty"]["1"]["accuracy"]["mean"] == pytest.approx(0.625)
    assert s["by_difficulty"]["2"]["pass_at_k"]["mean"] == 0.0


def test_paired_gain_is_the_mean_of_per_item_differences():
    before = _result([[0, 0], [1, 0], [0, 0]], [0, 1, 0], [1, 1, 1])
    after = _result([[1, 1], [1, 1], [0, 1]], [1, 1, 0], [1, 1, 1])
    gain = paired_task_gain(before, after)
    differences = np.array([1.0, 0.5, 0.5])
    assert gain["accuracy"] == pytest.approx(differences.mean())
    assert gain["accuracy_se"] == pytest.approx(differences.std(ddof=1) / math.sqrt(3))
    assert gain["greedy_accuracy"] == pytest.approx(1 / 3) and gain["by_difficulty"]["1"]["accuracy"]["mean"] > 0
    with pytest.raises(ValueError, match="Expected two evaluations of the same items"):
        paired_task_gain(before, _result([[0, 0]], [0], [1]))


def test_held_out_items_come_from_the_eval_split_per_level():
    items = held_out_items(make_task("arithmetic"), difficulties=[1, 2], items_per_difficulty=5, seed=3)
    assert [item.difficulty for item in items] == [1] * 5 + [2] * 5
    assert all(is_eval_item(item, 0.2) for item in items) and len({item.canonical for item in items}) == 10


def test_evaluate_task_is_reproducible_and_round_trips(task_env_and_policy):
    env, policy = task_env_and_policy
    items = held_out_items(env.task, difficulties=[1], items_per_difficulty=4, seed=0)
    first = evaluate_task(policy, env, items, samples_per_item=3, seed=5)
    second = evaluate_task(policy, env, items, samples_per_item=3, seed=5)
    assert first.sampled_correct == second.sampled_correct and first.samples == second.samples
    assert len(first.kls) == 4 and all(len(row) == 3 for row in first.lengths)
    assert all(abs(kl) < 1e-4 for row in first.kls for kl in row)  # the policy is its own reference
    gain = paired_task_gain(first, second)
    assert gain["accuracy"] == 0.0 and gain["accuracy_se"] == 0.0
    assert TaskEvalResult.from_dict(first.to_dict()).summary() == first.summary()


def test_evaluate_task_refuses_an_env_without_a_task(tiny):
    model, tokenizer = tiny
    env = TextGenVectorEnv(num_envs=1, model=model, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="Expected an env built with task="):
        evaluate_task(LMPolicy(model, tokenizer, value_head=False, reference=model), env, [])


@pytest.mark.filterwarnings("ignore:Prompt of")  # the tools' description is longer than the tiny model's window
def test_with_tools_the_evaluation_steps_the_env_and_counts_the_calls(monkeypatch):
    """A scripted policy calls the calculator in every completion: the calls run (their results are in the text),
    are counted, stay out of the length and the KL, and the env's scores agree with the task's own."""
    import agents.evaluation.tasks as tasks_module
    from agents.evaluation.textgen import completion_kls
    from textgen_env.testing import tiny_tool_model_and_tokenizer
    from textgen_env.tools import CALL_FORMATS

    model, tokenizer = tiny_tool_model_and_tokenizer()
    reference, _ = tiny_tool_model_and_tokenizer(seed=1)
    env = TextGenVectorEnv(
        num_envs=2,
        model=model,
        tokenizer=tokenizer,
        task="arithmetic",
        tools=["calculator"],
        max_prompt_tokens=40,
        max_new_tokens=100,
    )
    script = tokenizer(CALL_FORMATS["tags"].call_text("calculator", {"expression": "1+1"}) + "2")["input_ids"]
    script = [*script, tokenizer.eos_token_id]
    steps = [0]

    def scripted(logits, temperature, generator):
        token = script[steps[0] % len(script)]
        steps[0] += 1
        return torch.full((logits.shape[0],), token, dtype=torch.long)

    monkeypatch.setattr(tasks_module, "sample_tokens", scripted)
    policy = LMPolicy(model, tokenizer, value_head=False, reference=reference)
    items = held_out_items(env.task, difficulties=[1], items_per_difficulty=3, seed=0)
    result = evaluate_task(policy, env, items, samples_per_item=2, seed=0)
    assert result.tool_calls == [[1.0, 1.0]] * 3
    summary = result.summary()
    assert summary["tool_use"] == 1.0 and summary["tool_calls"] == 1.0
    assert all(row == [len(script)] * 2 for row in result.lengths)  # the policy's tokens only
    for sample, item, correct in zip(result.samples, items, result.sampled_correct):
        assert "<tool_result>2</tool_result>" in sample["sampled"]
        assert correct[0] == env.task.score(sample["sampled"], item)["correct"]  # the env scored what it ran
    prompt = env.encode_prompt(env.task_prompt(items[0]))
    whole = tokenizer(sample["sampled"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    with_env_tokens = completion_kls(policy, [(prompt, whole)], temperature=1.0)[0]
    assert 0 < result.kls[0][0] < with_env_tokens  # the inserted result's positions are not charged
