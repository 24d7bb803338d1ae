"""textgen_env.integrations.trl: reward functions equal the package rewards (plain and chat), datasets carry the
columns, a mix splits into terms with the same total, and GRPOTrainer trains a few steps with them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from gymnasium.error import DependencyNotInstalled

from textgen_env.integrations import _deps
from textgen_env.integrations.trl import TRLTask, prompt_dataset, trl_reward_functions
from textgen_env.rewards import make_reward

MIX = {"length": 0.5, "keyword": 2.0}
MIX_KWARGS = {"keyword": {"keywords": ["great", "fun"]}}
PROMPTS = ["The film was", "I watched it and", "The story"]
COMPLETIONS = [" great fun", " it was dull and long", " great"]


def test_a_function_returns_the_package_rewards_score():
    [function] = trl_reward_functions(MIX, MIX_KWARGS)
    expected = make_reward(MIX, MIX_KWARGS)(PROMPTS, COMPLETIONS, [True] * 3)
    assert function(prompts=PROMPTS, completions=COMPLETIONS, completion_ids=[[1]] * 3) == pytest.approx(expected)
    assert function.__name__ == "mix"


def test_chat_prompts_and_completions_score_as_their_texts():
    [function] = trl_reward_functions("keyword", {"keywords": ["great"]})
    chats = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": p}] for p in PROMPTS]
    replies = [[{"role": "assistant", "content": c}] for c in COMPLETIONS]
    assert function(prompts=chats, completions=replies) == function(prompts=PROMPTS, completions=COMPLETIONS)
    assert function(prompts=PROMPTS, completions=COMPLETIONS) == [1.0, 0.0, 1.0]


def test_a_split_mix_logs_each_term_and_sums_to_the_mix():
    functions = trl_reward_functions(MIX, MIX_KWARGS, split=True)
    [whole] = trl_reward_functions(MIX, MIX_KWARGS)
    assert [f.__name__ for f in functions] == ["length", "keyword"]
    total = np.sum([f(prompts=PROMPTS, completions=COMPLETIONS) for f in functions], axis=0)
    assert total == pytest.approx(whole(prompts=PROMPTS, completions=COMPLETIONS))


def test_references_come_from_the_dataset_column():
    dataset = prompt_dataset("facts", num_prompts=4, seed=1)
    assert set(dataset.column_names) == {"prompt", "references"}
    [bleu] = trl_reward_functions("bleu")
    rows = dataset[:4]
    perfect = bleu(prompts=rows["prompt"], completions=[refs[0] for refs in rows["references"]], **rows)
    assert perfect == pytest.approx([1.0] * 4, abs=1e-6)
    with pytest.raises(ValueError, match="Expected a 'references' column in the dataset for reward 'bleu'"):
        bleu(prompts=rows["prompt"], completions=["x"] * 4)


def test_prompt_dataset_rows_plain_and_conversational():
    plain = prompt_dataset(["a", "b", "c"])
    assert plain["prompt"] == ["a", "b", "c"] and plain.column_names == ["prompt"]
    chat = prompt_dataset(["a"], conversational=True, system_prompt="Be kind.")
    assert chat["prompt"] == [[{"role": "system", "content": "Be kind."}, {"role": "user", "content": "a"}]]
    drawn = prompt_dataset(lambda rng: f"n{int(rng.integers(100))}", num_prompts=5, seed=3)
    assert (
        len(drawn) == 5
        and drawn["prompt"] == prompt_dataset(lambda rng: f"n{int(rng.integers(100))}", num_prompts=5, seed=3)["prompt"]
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prompts": lambda rng: "x"}, "Expected num_prompts for a callable prompt source"),
        ({"prompts": ["a"], "num_prompts": 0}, "Expected num_prompts to be an int >= 1"),
        ({"prompts": ["a"], "system_prompt": "s"}, "Expected conversational=True with a system_prompt"),
    ],
    ids=["callable-without-count", "zero-count", "system-without-chat"],
)
def test_bad_dataset_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        prompt_dataset(**kwargs)


def test_a_missing_dependency_names_the_pip_command():
    with pytest.raises(DependencyNotInstalled, match=r'pip install no-such-package \(or pip install "textgen-env\['):
        _deps.require("no_such_module_here", "no-such-package", feature="prompt_dataset")


@dataclass(frozen=True)
class AdditionItem:
    question: str
    answer: str
    difficulty: int = 1

    def messages(self):
        return [{"role": "user", "content": self.question}]


class AdditionTask:
    """The tasks protocol in miniature: correct when the completion is the sum, format when it is a number."""

    name = "addition"
    difficulties = (1,)

    def __init__(self):
        self.calls = 0

    def score(self, completion, item):
        self.calls += 1
        return {"correct": float(completion.strip() == item.answer), "format": float(completion.strip().isdigit())}


def test_a_task_becomes_a_dataset_and_one_function_per_score_part():
    task = AdditionTask()
    adapter = TRLTask(task, [AdditionItem("2 + 2?", "4"), AdditionItem("1 + 5?", "6")])
    dataset = adapter.dataset()
    assert dataset.column_names == ["prompt", "answer", "difficulty", "item_index"]
    assert dataset[1]["prompt"] == [{"role": "user", "content": "1 + 5?"}]
    correct, form = adapter.reward_functions({"correct": 1.0, "format": 0.5})
    assert (correct.__name__, form.__name__) == ("addition_correct", "addition_format")
    rows = dataset[:2]
    replies = [[{"role": "assistant", "content": "4"}], [{"role": "assistant", "content": "five"}]]
    assert correct(prompts=rows["prompt"], completions=replies, **rows) == [1.0, 0.0]
    assert form(prompts=rows["prompt"], completions=replies, **rows) == [0.5, 0.0]
    assert task.calls == 2  # the second function reused the batch's scores


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: TRLTask(object(), [AdditionItem("q", "1")]), TypeError, "Expected a task with a score"),
        (lambda: TRLTask(AdditionTask(), []), ValueError, "Expected at least one task item"),
        (
            lambda: TRLTask(AdditionTask(), [AdditionItem("q", "1")]).reward_functions()[0](
                prompts=["q"], completions=["1"]
            ),
            ValueError,
            "Expected an 'item_index' column",
        ),
        (
            lambda: TRLTask(AdditionTask(), [AdditionItem("q", "1")]).reward_functions({"speed": 1.0})[0](
                prompts=["q"], completions=["1"], item_index=[0]
            ),
            ValueError,
            "Expected the task's score to have 'speed'",
        ),
    ],
    ids=["not-a-task", "no-items", "no-index-column", "unknown-component"],
)
def test_bad_task_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_grpo_trainer_trains_a_few_steps_on_our_reward(tiny_model_dir, tmp_path):
    trl = pytest.importorskip("trl")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, padding_side="left")
    before = [p.detach().clone() for p in model.parameters()]
    config = trl.GRPOConfig(
        output_dir=str(tmp_path),
        learning_rate=1e-2,
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=6,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        activation_checkpointing=False,
        seed=0,
    )
    trainer = trl.GRPOTrainer(
        model=model,
        reward_funcs=trl_reward_functions(MIX, MIX_KWARGS, split=True),
        args=config,
        train_dataset=prompt_dataset(["the movie was", "the film is", "i think the story"]),
        processing_class=tokenizer,
    )
    trainer.train()
    logged = {key for entry in trainer.state.log_history for key in entry}
    assert {"rewards/length/mean", "rewards/keyword/mean"} <= logged
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


def test_the_module_examples_run():
    import doctest

    from textgen_env.integrations import trl as module

    assert doctest.testmod(module).failed == 0
