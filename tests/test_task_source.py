"""TextGen-v0 with ``task=``: items as prompts, the task's score as reward, info["task"], splits, curriculum, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from textgen_env import TextGenEnv, TextGenVectorEnv
from textgen_env.task_source import TaskSource
from textgen_env.tasks import is_eval_item, make_task
from textgen_env.testing import tiny_math_model_and_tokenizer

CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}<assistant> {% endif %}"
)


@pytest.fixture(scope="module")
def math_tiny():
    return tiny_math_model_and_tokenizer()


@pytest.fixture
def make_task_env(math_tiny):
    model, tokenizer = math_tiny

    def factory(**kwargs) -> TextGenEnv:
        kwargs.setdefault("task", "arithmetic")
        kwargs.setdefault("max_prompt_tokens", 40)
        kwargs.setdefault("max_new_tokens", 4)
        return TextGenEnv(model=model, tokenizer=tokenizer, **kwargs)

    return factory


def _answer(env: TextGenEnv, text: str, seed: int = 0) -> tuple[float, dict]:
    """Reset with `seed`, write `text` token by token, then EOS; the return and the last info."""
    env.reset(seed=seed)
    total, info = 0.0, {}
    for token in [*env.tokenizer(text)["input_ids"], env.tokenizer.eos_token_id]:
        _, reward, terminated, _, info = env.step(token)
        total += float(reward)
        if terminated:
            break
    return total, info


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_reference_answer_is_correct_and_a_wrong_one_is_not(make_task_env, seed):
    env = make_task_env()
    _, info = env.reset(seed=seed)
    answer = info["task"]["answer"]
    total, info = _answer(env, answer, seed=seed)
    assert info["task"]["correct"] == 1.0 and info["reward_components"]["correct"] == 1.0 and total == 1.0
    assert info["task"]["format"] == 1.0  # the number alone is the plain format
    wrong = str(int(answer) + 1)
    total, info = _answer(env, wrong, seed=seed)
    assert info["task"]["correct"] == 0.0 and info["reward_components"]["correct"] == 0.0 and total == 0.0


def test_info_names_the_task_its_reference_answer_and_difficulty(make_task_env):
    env = make_task_env(difficulty=2)
    _, info = env.reset(seed=3)
    assert set(info["task"]) >= {"name", "answer", "difficulty", "question"}
    assert info["task"]["name"] == "arithmetic" and info["task"]["difficulty"] == 2
    assert isinstance(info["task"]["answer"], str)
    _, _, _, _, info = env.step(5)
    assert {"correct", "format"} <= set(info["reward_components"])


def test_the_prompt_is_the_chat_template_of_the_items_messages_with_the_answer_format(math_tiny):
    model, tokenizer = math_tiny
    templated = tokenizer.__class__(tokenizer_object=tokenizer.backend_tokenizer, eos_token="<eos>", pad_token="<pad>")
    templated.chat_template = CHAT_TEMPLATE
    env = TextGenEnv(model=model, tokenizer=templated, task="arithmetic", max_prompt_tokens=40)
    _, info = env.reset(seed=0)
    assert info["prompt"].startswith("<system> Answer with the number only.")
    assert info["prompt"].endswith(f"<user> {info['task']['question']} <assistant> ")
    plain = TextGenEnv(model=model, tokenizer=templated, task="arithmetic", chat_template=False, max_prompt_tokens=40)
    _, info = plain.reset(seed=0)
    assert info["prompt"] == f"System: Answer with the number only.\nUser: {info['task']['question']}\nAssistant:"


def test_task_rewards_mix_with_the_package_reward_and_the_kl_term(make_task_env):
    env = make_task_env(reward="length", kl_coef=0.1, format_weight=0.5)
    _, info = env.reset(seed=0)
    total, info = _answer(env, info["task"]["answer"])
    parts = info["reward_components"]
    assert {"length", "correct", "format", "kl"} <= set(parts)
    assert parts["correct"] == 1.0 and parts["format"] == 0.5
    assert info["episode_return"] == pytest.approx(total)
    assert total != pytest.approx(1.5)  # the length reward and the KL term count too


@pytest.mark.parametrize("mode", [{}, {"action_mode": "top_k"}, {"observation_mode": "hidden"}], ids=str)
def test_gymnasium_and_sb3_checkers_pass_with_a_task(make_task_env, mode):
    check_env(make_task_env(**mode), skip_render_check=True)
    sb3_check_env(make_task_env(**mode), warn=False)


def test_train_and_eval_items_never_share_content(make_task_env):
    def canonicals(split: str) -> set[str]:
        source = TaskSource("arithmetic", difficulty=2, split=split)
        return {source.sample(np.random.default_rng(seed)).canonical for seed in range(300)}

    train, held_out = canonicals("train"), canonicals("eval")
    assert len(train) > 100 and len(held_out) > 100 and not train & held_out
    env = make_task_env(task_split="eval", difficulty=2)
    assert all(is_eval_item(env.unwrapped.batch.items[0], 0.2) for _ in range(20) if env.reset(seed=_))


def test_slots_reset_with_the_same_seed_get_the_same_item(math_tiny):
    model, tokenizer = math_tiny
    env = TextGenVectorEnv(num_envs=4, model=model, tokenizer=tokenizer, task="arithmetic", max_prompt_tokens=40)
    _, infos = env.reset(seed=[7, 7, 8, 8])
    questions = list(infos["task"]["question"])
    assert questions[0] == questions[1] and questions[2] == questions[3]
    assert env.task_prompt(make_task("arithmetic").sample(np.random.default_rng(0), 1)).endswith("Assistant:")


def test_auto_difficulty_rises_when_the_answers_are_right(make_task_env):
    env = make_task_env(difficulty="auto")
    assert env.task_log()["task/difficulty"] == 1.0
    levels = []
    for seed in range(40):
        _, info = env.reset(seed=seed)
        levels.append(info["task"]["difficulty"])
        _answer_from_reset(env, info["task"]["answer"])
    assert levels[0] == 1 and levels[-1] == 2  # 32 right answers fill the window above the band: one level up
    assert env.task_log()["task/difficulty"] == 2.0 and env.task_log()["task/level_changes"] == 1.0


def _answer_from_reset(env: TextGenEnv, text: str) -> None:
    for token in [*env.tokenizer(text)["input_ids"], env.tokenizer.eos_token_id]:
        if env.step(token)[2]:
            return


def test_without_a_task_the_env_is_unchanged(make_env):
    env = make_env()
    _, info = env.reset(seed=0)
    assert "task" not in info and env.task is None and env.task_log() == {}
    assert env.reward.name == "length"  # the default reward without a task


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"task": "no_such_task"}, ValueError, r"Expected task to be one of \[.arithmetic.*got .no_such_task."),
        ({"difficulty": 99}, ValueError, r"Expected difficulty for task 'arithmetic' to be one of \[1, 2"),
        ({"task": None, "difficulty": 2}, ValueError, r"Expected task= with difficulty, got task=None"),
        ({"task_split": "test"}, ValueError, r"Expected task_split to be one of"),
        ({"correct_weight": float("nan")}, ValueError, r"Expected correct_weight to be a finite number"),
        ({"task": 3}, TypeError, r"Expected task to be a task name or a Task, got int"),
    ],
    ids=["unknown-task", "difficulty-out-of-range", "difficulty-without-task", "bad-split", "nan-weight", "int"],
)
def test_bad_task_settings_raise_clear_errors(make_task_env, kwargs, error, match):
    with pytest.raises(error, match=match):
        make_task_env(**kwargs)


def test_a_prompt_option_is_refused_in_a_task_env(make_task_env):
    with pytest.raises(ValueError, match="Expected no prompt option in a task env"):
        make_task_env().reset(seed=0, options={"prompt": "hello"})


def test_gym_make_forwards_the_task_arguments(math_tiny):
    model, tokenizer = math_tiny
    env = gym.make(
        "TextGen-v0",
        model=model,
        tokenizer=tokenizer,
        task="arithmetic",
        task_kwargs={"answer_format": "tag"},
        difficulty=3,
        max_prompt_tokens=48,
    )
    _, info = env.reset(seed=0)
    assert info["task"]["difficulty"] == 3 and "<answer>" in info["prompt"]
