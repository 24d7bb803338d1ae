"""TextDialogue-v0 with task=: the task user asks an item, says "try again" after a wrong reply, ends on a right one."""

from __future__ import annotations

import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from textgen_env.dialogue import TextDialogueEnv
from textgen_env.dialogue.task_user import RETRY_MESSAGE
from textgen_env.testing import tiny_math_model_and_tokenizer


@pytest.fixture(scope="module")
def math_tiny():
    return tiny_math_model_and_tokenizer()


@pytest.fixture
def make_task_dialogue(math_tiny):
    model, tokenizer = math_tiny

    def factory(**kwargs) -> TextDialogueEnv:
        kwargs.setdefault("task", "arithmetic")
        kwargs.setdefault("max_reply_tokens", 3)
        kwargs.setdefault("max_turns", 3)
        return TextDialogueEnv(model=model, tokenizer=tokenizer, **kwargs)

    return factory


def _reply(env: TextDialogueEnv, text: str) -> tuple[float, bool, dict]:
    """Write `text` then EOS as one reply; the reward of its steps, whether the conversation ended, the last info."""
    total = 0.0
    for token in [*env.tokenizer(text)["input_ids"], env.tokenizer.eos_token_id]:
        obs, reward, terminated, _, info = env.step(token)
        total += float(reward)
        if info.get("reply_ended") or terminated:
            return total, terminated, {**info, "obs": obs}
    raise AssertionError("the reply did not end")


def test_a_wrong_reply_gets_try_again_and_a_right_one_ends_the_conversation(make_task_dialogue):
    env = make_task_dialogue()
    _, info = env.reset(seed=0)
    assert (
        info["conversation"][0]["role"] == "system" and info["conversation"][1]["content"] == info["task"]["question"]
    )
    answer = info["task"]["answer"]
    reward, over, info = _reply(env, str(int(answer) + 1))
    assert not over and reward == 0.0 and info["conversation"][-1] == {"role": "user", "content": RETRY_MESSAGE}
    assert info["obs"]["feedback"][0] == 0.0 and info["feedback"] == [0.0]
    reward, over, info = _reply(env, answer)
    # the default return is the mean rating at the end: right on the second try pays 0.5
    assert over and reward == 0.5 and info["feedback"] == [0.0, 1.0] and info["task"]["correct"] == 1.0


def test_a_right_first_reply_pays_more_than_a_right_second_reply(make_task_dialogue):
    env = make_task_dialogue()
    _, info = env.reset(seed=0)
    first_try, over, _ = _reply(env, info["task"]["answer"])
    assert over and first_try == 1.0
    _, info = env.reset(seed=0)
    _reply(env, str(int(info["task"]["answer"]) + 1))
    second_try, over, _ = _reply(env, info["task"]["answer"])
    assert over and second_try < first_try


def test_wrong_replies_until_max_turns_end_without_reward(make_task_dialogue):
    env = make_task_dialogue(max_turns=2)
    _, info = env.reset(seed=1)
    wrong = str(int(info["task"]["answer"]) + 2)
    assert _reply(env, wrong)[1] is False
    reward, over, info = _reply(env, wrong)
    assert over and reward == 0.0 and info["episode_return"] == 0.0


def test_checkers_pass_for_a_task_conversation(make_task_dialogue):
    check_env(make_task_dialogue(), skip_render_check=True)
    sb3_check_env(make_task_dialogue(), warn=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": None, "user": "task"}, "Expected task= with user='task'"),
        ({"user": "simulated"}, "Expected user='task' .or the default. with task="),
        ({"difficulty": 42}, "Expected difficulty for task 'arithmetic'"),
    ],
    ids=["task-user-without-task", "other-user-with-task", "bad-difficulty"],
)
def test_bad_task_conversation_settings_raise(make_task_dialogue, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_task_dialogue(**kwargs)
