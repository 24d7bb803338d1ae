"""textgen_env.integrations.trl: reward functions equal the package rewards (plain and chat), datasets carry the
columns, a mix splits into terms with the same total, and GRPOTrainer trains a few steps with them."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.error import DependencyNotInstalled

from textgen_env.integrations import _deps
from textgen_env.integrations.trl import prompt_dataset, trl_reward_functions
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
