"""The tool-call warm-up: scripted demonstrations are the env's own episodes (its rendering, call detection and
result tokens, marked as env tokens), and fine-tuning on them teaches a model that never called the tool to call it."""

from __future__ import annotations

import re

import pytest

from agents.evaluation.tasks import evaluate_task, held_out_items
from agents.policy import LMPolicy
from agents.warmup import supervised_warmup, tool_call_demonstrations
from textgen_env import TextGenVectorEnv
from textgen_env.tasks import TaskSampler
from textgen_env.testing import tiny_tool_model_and_tokenizer
from textgen_env.tools import CALL_FORMATS

pytestmark = pytest.mark.filterwarnings("ignore:Prompt of")  # the tools' description outgrows the tiny window


def _env(model, tokenizer, tools=("calculator",), task="arithmetic") -> TextGenVectorEnv:
    return TextGenVectorEnv(
        num_envs=4,
        model=model,
        tokenizer=tokenizer,
        task=task,
        tools=list(tools),
        max_prompt_tokens=24,
        max_new_tokens=100,
    )


def _train_items(env, n):
    sampler = TaskSampler(env.task, seed=0, split="train", difficulty=1)
    return [sampler.next() for _ in range(n)]


def test_demonstrations_are_the_envs_own_episodes():
    model, tokenizer = tiny_tool_model_and_tokenizer()
    env = _env(model, tokenizer)
    items = _train_items(env, 6)
    episodes = tool_call_demonstrations(env, items)
    assert len(episodes) == 6
    for episode, item in zip(episodes, items):
        call = CALL_FORMATS["tags"].call_text("calculator", {"expression": item.metadata["expression"]})
        result = f"<tool_result>{item.answer}</tool_result>"  # the calculator agrees with the task's answer
        assert episode.completion == f"{call}{result}{item.answer}"
        inserted = [t for t, env_token in zip(episode.completion_ids, episode.env_token_mask) if env_token]
        assert tokenizer.decode(inserted) == result
        assert episode.completion_ids[-1] == tokenizer.eos_token_id and not episode.env_token_mask[-1]


def test_the_warmup_teaches_a_model_to_call_the_tool():
    model, tokenizer = tiny_tool_model_and_tokenizer()
    reference, _ = tiny_tool_model_and_tokenizer()
    env = _env(model, tokenizer)
    policy = LMPolicy(model, tokenizer, value_head=False, reference=reference)
    items = held_out_items(env.task, difficulties=[1], items_per_difficulty=4, seed=0)
    call = '<tool_call>{"name": "calculator", "arguments": {"expression": "'
    before = evaluate_task(policy, env, items, samples_per_item=2, seed=0)
    assert not any(sample["greedy"].startswith(call) for sample in before.samples)
    stats = supervised_warmup(
        policy, tool_call_demonstrations(env, _train_items(env, 32)), epochs=40, learning_rate=3e-3
    )
    assert stats["demonstrations"] == 32 and stats["epoch_losses"][-1] < 0.2 * stats["epoch_losses"][0]
    after = evaluate_task(policy, env, items, samples_per_item=2, seed=0)
    for sample in after.samples:  # a well-formed call whose result the env computed and inserted
        assert re.match(
            re.escape(call) + r'[0-9 +*-]+"}}</tool_call><tool_result>-?\d+</tool_result>', sample["greedy"]
        )
    assert after.summary()["tool_use"] == 1.0 and after.summary()["tool_calls"] == 1.0


def test_bad_warmup_input_is_refused():
    model, tokenizer = tiny_tool_model_and_tokenizer()
    with pytest.raises(ValueError, match="Expected an env with the 'calculator' tool, got tools"):
        tool_call_demonstrations(_env(model, tokenizer, tools=("search",)), [])
    env = _env(model, tokenizer, task="counting")
    with pytest.raises(ValueError, match=r"Expected task items with metadata\['expression'\]"):
        tool_call_demonstrations(env, _train_items(env, 1))
    policy = LMPolicy(model, tokenizer, value_head=False)
    with pytest.raises(ValueError, match="Expected at least one demonstration, got none"):
        supervised_warmup(policy, [])
