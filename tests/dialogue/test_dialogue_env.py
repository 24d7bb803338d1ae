"""TextDialogue-v0 on the tiny model: env checkers, a conversation's state, rewards and messages, users, the vector
env against single envs, chat templates, and bad input."""

from __future__ import annotations

import copy
import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import textgen_env  # noqa: F401  (registers TextDialogue-v0)
from agents.sb3 import LMActorCriticPolicy
from textgen_env.dialogue import HumanUser, RuleBasedUser, SimulatedUser, TextDialogueEnv, User, UserTurn
from textgen_env.dialogue.conversation import render
from textgen_env.dialogue.scenarios import SCENARIOS


@pytest.fixture
def make_dialogue(tiny):
    model, tokenizer = tiny

    def factory(**kwargs) -> TextDialogueEnv:
        settings = dict(model=model, tokenizer=tokenizer, max_reply_tokens=4, max_context_tokens=96)
        settings.update(kwargs)
        return TextDialogueEnv(**settings)

    return factory


class ScriptedUser(User):
    """Rates every reply 0.5 and answers 'tell me more' until the third reply."""

    def respond(self, conversation):
        self.turn += 1
        return UserTurn(text="tell me more", feedback=0.5, done=self.turn >= 3)


def _play(env, seed=0):
    obs, info = env.reset(seed=seed)
    steps = []
    terminated = False
    while not terminated:
        obs, reward, terminated, _, info = env.step(env.action_space.sample())
        steps.append((obs, reward, terminated, info))
    return steps


@pytest.mark.parametrize(
    "modes",
    [{}, {"action_mode": "top_k", "observation_mode": "hidden"}],
    ids=["vocab-tokens", "topk-hidden"],
)
def test_env_checkers_pass(make_dialogue, modes):
    check_env(make_dialogue(**modes), skip_render_check=True)
    sb3_check_env(make_dialogue(**modes), warn=False)


def test_a_conversation_puts_the_user_turns_and_ratings_in_the_state(make_dialogue, tiny):
    _, tokenizer = tiny
    env = make_dialogue(user=ScriptedUser(), max_turns=5, feedback_weight=2.0, final_weight=1.0)
    env.action_space.seed(0)
    steps = _play(env)
    ended = [s for s in steps if s[3].get("reply_ended")]
    assert len(ended) == 3  # the user ended it after the third reply
    for obs, reward, _, info in ended[:-1]:
        assert reward == pytest.approx(2.0 * 0.5)  # the rating on the reply's last token
        ids = obs["input_ids"][obs["attention_mask"] == 1].tolist()
        rendered = tokenizer(render(tokenizer, info["conversation"]))["input_ids"]
        assert ids == rendered[-len(ids) :] and info["conversation"][-1]["content"] == "tell me more"
        np.testing.assert_allclose(obs["feedback"][:2], [0.5, 0.5])
        assert obs["feedback"][3] == 1.0  # a new reply: every token left
    obs, reward, terminated, info = ended[-1]
    assert terminated and reward == pytest.approx(2.0 * 0.5 + 1.0 * 0.5)  # plus the final mean rating
    assert [m["role"] for m in info["conversation"]] == ["user", "assistant"] * 3
    assert info["episode_return"] == pytest.approx(sum(s[1] for s in steps))
    replies = [m["content"] for m in info["conversation"] if m["role"] == "assistant"]
    assert all(len(tokenizer(r)["input_ids"]) <= 4 for r in replies)  # replies are the agent's tokens only
    assert env.render() is None and "feedback +0.50" in env.batch.render_text(0)
    with pytest.raises(gym.error.ResetNeeded):
        env.step(0)


def test_rule_based_users_rate_with_the_scenario_rubric(make_dialogue):
    env = make_dialogue(scenarios="short_answer", max_turns=2)
    env.action_space.seed(1)
    steps = _play(env)
    info = steps[-1][3]
    replies = [m["content"] for m in info["conversation"] if m["role"] == "assistant"]
    expected = [1.0 - min(1.0, abs(len(r.split()) - 4) / 4) for r in replies]
    np.testing.assert_allclose(info["feedback"], expected)
    if len(replies) > 1:  # the user was not yet content: it said the scenario's first follow-up
        assert info["conversation"][2]["content"] == SCENARIOS["short_answer"].follow_ups[0]
    else:
        assert expected[0] >= SCENARIOS["short_answer"].satisfied_at


def test_the_vector_env_equals_single_envs_seeded_in_turn(make_dialogue, tiny):
    model, tokenizer = tiny
    settings = dict(model=model, tokenizer=tokenizer, max_reply_tokens=3, max_context_tokens=96, scenarios="all")
    vector = gym.make_vec("TextDialogue-v0", num_envs=3, **settings)
    singles = [TextDialogueEnv(**settings) for _ in range(3)]
    obs, _ = vector.reset(seed=5)
    single_obs = [env.reset(seed=5 + i)[0] for i, env in enumerate(singles)]
    for i in range(3):
        np.testing.assert_array_equal(obs["input_ids"][i], single_obs[i]["input_ids"])
    rng = np.random.default_rng(0)
    for _ in range(6):  # within the first conversations (3 replies of up to 3 tokens: at least 3 steps each)
        actions = rng.integers(0, len(tokenizer), size=3)
        obs, rewards, terminated, _, _ = vector.step(actions)
        for i, env in enumerate(singles):
            if env.batch.done[0]:
                continue
            o, r, t, _, _ = env.step(int(actions[i]))
            np.testing.assert_array_equal(obs["input_ids"][i], o["input_ids"])
            np.testing.assert_allclose(obs["feedback"][i], o["feedback"])
            assert rewards[i] == pytest.approx(r) and terminated[i] == t


def test_the_chat_template_renders_the_conversation(make_dialogue, tiny):
    _, tokenizer = tiny
    tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    try:
        env = make_dialogue(scenarios="refund")
        env.reset(seed=0)
        text = env.batch.core.prompts[0].text  # what the observation's tokens encode
        assert text.startswith("<user> Hi, my headphones broke") and text.endswith("<assistant>")
        assert make_dialogue(chat_template=False).reset(seed=0)[1]["conversation"][0]["role"] == "user"
        tokenizer.chat_template = "{{ raise_exception('only system messages') }}"
        with pytest.raises(ValueError, match="Expected the tokenizer's chat template to render the conversation"):
            make_dialogue().reset(seed=0)
    finally:
        tokenizer.chat_template = None


def test_the_simulated_user_writes_with_the_lm_reproducibly(make_dialogue):
    runs = []
    for _ in range(2):
        env = make_dialogue(user=SimulatedUser(max_tokens=5), scenarios="explain", max_turns=2)
        env.action_space.seed(3)
        runs.append(_play(env, seed=3)[-1][3]["conversation"])
    assert runs[0] == runs[1] and len(runs[0]) >= 2
    assert runs[0][2]["content"] not in SCENARIOS["explain"].follow_ups if len(runs[0]) > 2 else True


def test_a_human_user_answers_through_a_callback_and_every_turn_is_logged(make_dialogue, tmp_path):
    log = tmp_path / "turns.jsonl"
    answers = iter([("why?", 0.2, False), ("thanks", 1.0, True)])
    env = make_dialogue(user=HumanUser(lambda conversation: next(answers), log_path=log), max_turns=4)
    env.action_space.seed(0)
    steps = _play(env)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["feedback"] for r in records] == [0.2, 1.0] and records[-1]["done"] is True
    assert steps[-1][3]["feedback"] == [0.2, 1.0]
    assert records[0]["conversation"][-1]["role"] == "assistant"


def test_sb3_ppo_with_the_lm_policy_runs_on_conversations(make_dialogue, tiny):
    model, _ = tiny
    env = make_dialogue(max_turns=2)
    ppo = PPO(LMActorCriticPolicy, env, n_steps=16, batch_size=16, n_epochs=1, policy_kwargs={"model": model})
    ppo.learn(32)
    assert ppo.num_timesteps == 32


class BadUser(RuleBasedUser):
    def respond(self, conversation):
        return UserTurn(text="ok", feedback="great", done=False)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"scenarios": "pirate"},
            ValueError,
            r"Expected scenario to be one of \[.*'refund'.*\] or a Scenario, got 'pirate'",
        ),
        ({"max_turns": 0}, ValueError, "Expected max_turns to be an int >= 1, got 0"),
        ({"user": "robot"}, ValueError, r"Expected user to be one of \['rule', 'simulated', 'task'\]"),
        ({"max_new_tokens": 8}, ValueError, "Expected max_reply_tokens, max_context_tokens and scenarios"),
    ],
    ids=["unknown-scenario", "no-turns", "unknown-user", "textgen-length-names"],
)
def test_bad_arguments_are_named(make_dialogue, kwargs, error, message):
    with pytest.raises(error, match=message):
        make_dialogue(**kwargs)


def test_a_malformed_user_turn_names_the_field(make_dialogue):
    env = make_dialogue(user=BadUser())
    env.reset(seed=0)
    with pytest.raises(TypeError, match=r"Expected UserTurn.feedback from BadUser.respond to be a finite number"):
        for _ in range(5):
            env.step(1)


def test_dense_feedback_pays_the_rating_as_it_builds_up_and_sums_to_it(make_dialogue):
    for mode in ("sparse", "dense"):
        env = make_dialogue(
            scenarios="short_answer", max_turns=2, feedback_mode=mode, feedback_weight=2.0, final_weight=0.0
        )
        env.action_space.seed(4)
        steps = _play(env, seed=4)
        ratings = steps[-1][3]["feedback"]
        assert sum(s[1] for s in steps) == pytest.approx(2.0 * sum(ratings))  # either way the same total
        paid_early = [s[1] for s in steps if not s[3].get("reply_ended")]
        if mode == "sparse":
            assert all(r == 0.0 for r in paid_early)
        else:  # one word more is a step toward the 4-word target: the rating grows during the reply
            assert any(r > 0 for r in paid_early)


def test_simulated_users_write_in_one_batch_what_each_would_alone(tiny):
    model, tokenizer = tiny
    settings = dict(model=model, tokenizer=tokenizer, max_reply_tokens=3, max_context_tokens=96, scenarios="all")
    settings.update(user="simulated", max_turns=2)
    vector = gym.make_vec("TextDialogue-v0", num_envs=3, **settings)
    singles = [TextDialogueEnv(**settings) for _ in range(3)]
    vector.reset(seed=2)
    for i, env in enumerate(singles):
        env.reset(seed=2 + i)
    actions = np.full(3, 5)
    for _ in range(3):  # the first replies end after 3 tokens: the users answer in one batch
        vector.step(actions)
        for env in singles:
            env.step(5)
    for i, env in enumerate(singles):
        assert vector.batch.conversations[i] == env.batch.conversations[0]
    assert all(len(c) == 3 for c in vector.batch.conversations)


class ContentAtUser(User):
    """Rates 0 until reply `content_at`, then 1 and ends content (0/1 ratings)."""

    def __init__(self, content_at: int) -> None:
        self.content_at = content_at

    def respond(self, conversation):
        self.turn += 1
        happy = self.turn >= self.content_at
        return UserTurn(text="tell me more", feedback=float(happy), done=happy)


def _converse(env, replies: list[list[str]]) -> tuple[float, list[float]]:
    """Write `replies` (words, then EOS) until the conversation ends; its return and the user's ratings."""
    env.reset(seed=0)
    total, terminated, info = 0.0, False, {}
    for words in replies:
        for token in [*env.tokenizer.convert_tokens_to_ids(words), env.tokenizer.eos_token_id]:
            _, reward, terminated, _, info = env.step(token)
            total += float(reward)
            if terminated or info.get("reply_ended"):
                break
        if terminated:
            return total, info["feedback"]
    raise AssertionError("expected the conversation to end")


def test_satisfying_the_user_sooner_never_returns_less_than_stalling(make_dialogue, tiny):
    model, tokenizer = tiny
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.add_tokens(["sorry", "refund"])  # the refund rubric's words, so that a reply can say them
    model = copy.deepcopy(model)
    model.resize_token_embeddings(len(tokenizer))
    env = make_dialogue(scenarios="refund", model=model, tokenizer=tokenizer, chat_template=False)
    sorry, refund = ["i", "sorry"], ["sorry", "refund"]  # rated 1/3 (stalling) and 2/3 (content at 0.6)
    at_once, ratings = _converse(env, [refund])
    assert ratings == pytest.approx([2 / 3])
    for stalled in range(1, 4):  # 1 or 2 apologies then the refund, or apologies until max_turns
        plan = [sorry] * stalled + [refund]
        later, ratings = _converse(env, plan)
        assert later == pytest.approx(np.mean(ratings))  # the return is the evaluated quantity
        assert at_once > later, (stalled, ratings)
    for first, second in ((1, 2), (2, 3)):  # 0/1 ratings: content after fewer replies returns strictly more
        sooner = _converse(make_dialogue(user=ContentAtUser(first), max_turns=3), [["the"]] * 3)[0]
        stalling = _converse(make_dialogue(user=ContentAtUser(second), max_turns=3), [["the"]] * 3)[0]
        assert sooner > stalling, (first, second, sooner, stalling)
