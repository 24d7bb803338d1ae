"""Tools in TextGen-v0 and TextDialogue-v0 (`textgen_env.tool_episodes`): a closed call is run and its result inserted
as env tokens in the same episode; limits, errors, rewards and infos; unclosed calls; the env's own KV cache."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from textgen_env.testing import tiny_tool_model_and_tokenizer
from textgen_env.tools import CALL_FORMATS, Tool

TAGS = CALL_FORMATS["tags"]


@pytest.fixture(scope="module")
def tool_lm():
    return tiny_tool_model_and_tokenizer()


def _env(tool_lm, **kwargs):
    model, tokenizer = tool_lm
    settings = dict(
        model=model, tokenizer=tokenizer, prompts=["Q: 12*34?"], max_new_tokens=160, stop_on_eos=False, reward="length"
    )
    settings.update(kwargs)
    return gym.make("TextGen-v0", **settings)


def _write(env, text: str):
    """Step the env through the tokens of `text`; return every step's info and the last step's flags."""
    tokenizer = env.unwrapped.tokenizer
    infos, terminated = [], False
    for token in tokenizer(text, add_special_tokens=False)["input_ids"]:
        _, reward, terminated, _, info = env.step(token)
        infos.append({**info, "reward": reward})
        if terminated:
            break
    return infos, terminated


def _calls(infos):
    return [info for info in infos if "tool_call" in info]


def test_a_closed_call_inserts_the_result_as_env_tokens_and_the_episode_goes_on(tool_lm):
    env = _env(tool_lm, tools=["calculator"])
    env.reset(seed=0)
    call = TAGS.call_text("calculator", {"expression": "12*34"})
    infos, terminated = _write(env, f"Let me see. {call} So 408.")
    batch = env.unwrapped.batch
    assert not terminated
    (step,) = _calls(infos)
    assert step["tool_call"]["result"] == "408" and step["tool_call"]["error"] is None
    inserted = step["env_tokens"]
    assert env.unwrapped.tokenizer.decode(inserted) == "<tool_result>408</tool_result>"
    assert infos[-1]["text"] == f"Let me see. {call}<tool_result>408</tool_result> So 408."
    mask = batch.env_token_mask(0)
    actions = len(env.unwrapped.tokenizer(f"Let me see. {call} So 408.", add_special_tokens=False)["input_ids"])
    assert sum(mask) == len(inserted) and len(mask) == actions + len(inserted)
    start = mask.index(True)
    assert batch.completion_ids[0][start : start + len(inserted)] == inserted  # the buffer holds them in place
    ids = env.unwrapped.batch.input_ids[0][env.unwrapped.batch.attention_mask[0] == 1].tolist()
    assert ids[-len(mask) :] == batch.completion_ids[0]  # the observation shows the same tokens


def test_the_call_list_errors_and_counts_are_in_the_last_info(tool_lm):
    def broken(x: str) -> str:
        raise RuntimeError("the tool broke")

    tool = Tool("broken", "Always fails.", {"type": "object", "properties": {"x": {"type": "string"}}}, broken)
    env = _env(tool_lm, tools=["calculator", tool], max_new_tokens=400, tool_error_reward=-0.5, tool_call_reward=0.1)
    env.reset(seed=0)
    text = (
        TAGS.call_text("nope", {})
        + TAGS.call_text("broken", {"x": "a"})
        + "<tool_call>{not json}</tool_call>"
        + TAGS.call_text("calculator", {"expression": "2+2"})
    )
    infos, _ = _write(env, text)
    calls = _calls(infos)
    assert [c["tool_call"]["name"] for c in calls] == ["nope", "broken", "", "calculator"]
    assert "Unknown tool 'nope'; expected one of: calculator, broken" in calls[0]["tool_call"]["error"]
    assert "RuntimeError: the tool broke" in calls[1]["tool_call"]["error"]
    assert calls[2]["tool_call"]["malformed"] and calls[3]["tool_call"]["result"] == "4"
    assert "error: Unknown tool" in env.unwrapped.tokenizer.decode(calls[0]["env_tokens"])  # the policy reads it
    for step, failed in zip(calls, [True, True, True, False]):
        parts = step["reward_components"]
        assert parts["tool_call"] == 0.1 and parts["tool_error"] == (-0.5 if failed else 0.0)
        assert step["reward"] == pytest.approx(sum(parts.values()))
    env.step(env.unwrapped.tokenizer.eos_token_id)  # stop_on_eos=False: a plain token; end by the length limit
    while True:
        _, _, terminated, _, info = env.step(7)
        if terminated:
            break
    assert info["tool_call_count"] == 4 and info["tool_error_count"] == 3 and info["tool_malformed_count"] == 1


def test_calls_past_the_limit_get_an_error_result(tool_lm):
    env = _env(tool_lm, tools=["calculator"], max_tool_calls=1, max_new_tokens=300)
    env.reset(seed=0)
    call = TAGS.call_text("calculator", {"expression": "1+1"})
    calls = _calls(_write(env, call + call)[0])
    assert calls[0]["tool_call"]["error"] is None
    assert "Call limit reached: at most 1" in calls[1]["tool_call"]["error"]


def test_a_long_result_is_cut_with_a_marker_and_counts_toward_the_length(tool_lm):
    tool = Tool("echo", "Echo.", {"type": "object", "properties": {"n": {"type": "integer"}}}, lambda n: "x" * n)
    env = _env(tool_lm, tools=[tool], max_tool_result_tokens=40)
    env.reset(seed=0)
    (step,) = _calls(_write(env, TAGS.call_text("echo", {"n": 500}))[0])
    text = env.unwrapped.tokenizer.decode(step["env_tokens"])
    assert len(step["env_tokens"]) == 40 and text.endswith("…[truncated]</tool_result>")
    assert text.startswith("<tool_result>xxx")


def test_a_result_never_takes_the_last_action(tool_lm):
    call = TAGS.call_text("calculator", {"expression": "10**50"})
    length = len(tool_lm[1](call, add_special_tokens=False)["input_ids"])
    env = _env(tool_lm, tools=["calculator"], max_new_tokens=length + 10, max_tool_result_tokens=64)
    env.reset(seed=0)
    infos, terminated = _write(env, call)
    (step,) = _calls(infos)
    assert not terminated and len(env.unwrapped.batch.completion_ids[0]) == length + 9  # one action left
    assert env.unwrapped.tokenizer.decode(step["env_tokens"]).endswith("</tool_result>")


def test_a_call_that_never_closes_ends_as_without_tools(tool_lm):
    text = '<tool_call>{"name": "calculator", "arguments": {"expression": "1+1"' + " " * 200
    ends = []
    for tools in (["calculator"], []):
        env = _env(tool_lm, tools=tools, max_new_tokens=64)
        env.reset(seed=0)
        infos, terminated = _write(env, text)
        assert terminated and not _calls(infos)
        ends.append((infos[-1]["text"], infos[-1]["stop_reason"], len(infos)))
    assert ends[0] == ends[1]
    assert infos[-1]["stop_reason"] == "max_new_tokens"


def test_the_envs_own_cache_sees_the_inserted_tokens(tool_lm):
    """With reference log-probs the env runs its model; after an insertion its next-token logits must be those of a
    fresh forward over the whole text."""
    import torch

    env = _env(tool_lm, tools=["calculator"], reference_logprobs=True)
    env.reset(seed=0)
    _write(env, TAGS.call_text("calculator", {"expression": "3*3"}))
    batch = env.unwrapped.batch
    ids = torch.as_tensor(batch.input_ids[0][batch.attention_mask[0] == 1])[None]
    with torch.no_grad():
        expected = batch.model(input_ids=ids).logits[0, -1]
    assert torch.allclose(batch.logits[0], expected, atol=1e-4)


def test_a_vector_env_with_tools_gives_each_slot_its_own_calls(tool_lm):
    model, tokenizer = tool_lm
    env = gym.make_vec(
        "TextGen-v0",
        num_envs=2,
        model=model,
        tokenizer=tokenizer,
        prompts=["Q"],
        tools=["calculator"],
        max_new_tokens=120,
        stop_on_eos=False,
    )
    env.reset(seed=0)
    texts = [TAGS.call_text("calculator", {"expression": "6*7"}), "x" * 80]
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    seen = []
    for k in range(len(ids[0])):
        _, _, _, _, infos = env.step(np.array([ids[0][k], ids[1][k]]))
        if "env_tokens" in infos:
            seen.append(infos["_env_tokens"].tolist())
            assert tokenizer.decode(infos["env_tokens"][0]) == "<tool_result>42</tool_result>"
    assert seen == [[True, False]]


def test_bad_tool_settings_raise():
    with pytest.raises(ValueError, match="Expected a Tool or one of the built-in tools"):
        gym.make("TextGen-v0", tools=["abacus"])
    with pytest.raises(ValueError, match="Expected tool_format to be one of"):
        gym.make("TextGen-v0", tools=["calculator"], tool_format="xml")
    with pytest.raises(ValueError, match="Expected max_tool_calls to be an int >= 0"):
        gym.make("TextGen-v0", tools=["calculator"], max_tool_calls=-1)
    with pytest.raises(ValueError, match="Expected tool_timeout_s to be a number in"):
        gym.make("TextGen-v0", tools=["calculator"], tool_timeout_s=0)
    with pytest.raises(ValueError, match="Expected tool_call_reward to be a finite number"):
        gym.make("TextGen-v0", tools=["calculator"], tool_call_reward=float("nan"))


def test_a_dialogue_reply_can_call_a_tool(tool_lm):
    from textgen_env.dialogue import TextDialogueEnv
    from textgen_env.dialogue.users import User, UserTurn

    class Thanks(User):
        def respond(self, conversation):
            self.turn += 1
            return UserTurn(text="thanks", feedback=1.0, done=self.turn >= 2)

    model, tokenizer = tool_lm
    env = TextDialogueEnv(
        model=model,
        tokenizer=tokenizer,
        tools=["calculator"],
        user=Thanks,
        max_reply_tokens=120,
        max_context_tokens=300,
        stop_on_eos=True,
    )
    env.reset(seed=0)
    call = TAGS.call_text("calculator", {"expression": "5*5"})
    infos, _ = _write(env, call + "25")
    (step,) = _calls(infos)
    assert tokenizer.decode(step["env_tokens"]) == "<tool_result>25</tool_result>"
    _, _, _, _, info = env.step(tokenizer.eos_token_id)  # the reply ends; the user answers
    assert info["conversation"][1]["content"] == call + "<tool_result>25</tool_result>25"


def test_the_env_checkers_pass_with_tools(tool_lm):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = _env(tool_lm, tools=["calculator", "search"], max_new_tokens=16)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)


@pytest.mark.filterwarnings("ignore:Prompt of")
def test_a_task_scores_what_the_policy_wrote_never_the_tool_result(tool_lm):
    """A completion that calls the calculator on the question and stops holds the right number only in the env's
    result: it scores 0; writing the number after the result scores 1."""
    from textgen_env import TextGenVectorEnv
    from textgen_env.tasks import TaskSampler

    model, tokenizer = tool_lm
    env = TextGenVectorEnv(
        num_envs=2, model=model, tokenizer=tokenizer, task="arithmetic", tools=["calculator"], max_new_tokens=100
    )
    sampler = TaskSampler(env.task, seed=0, split="eval", difficulty=1)
    item = next(i for i in iter(sampler.next, None) if not i.metadata["expression"].endswith(f" {i.answer}"))
    call = CALL_FORMATS["tags"].call_text("calculator", {"expression": item.metadata["expression"]})
    scripts = [
        [*tokenizer(call, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id],
        [*tokenizer(call + item.answer, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id],
    ]
    env.reset(seed=0, options={"item": [item, item]})
    step, correct = 0, [None, None]
    while None in correct:
        actions = np.array([script[min(step, len(script) - 1)] for script in scripts])
        _, _, terminated, truncated, infos = env.step_unfinished(actions)
        for i in range(2):
            if terminated[i] or truncated[i]:
                correct[i] = infos["task"]["correct"][i]
                assert f"<tool_result>{item.answer}</tool_result>" in infos["text"][i]
        step += 1
    assert correct == [0.0, 1.0]
