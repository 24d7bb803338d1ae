"""Our agents on TextDialogue-v0 (tiny model): every reply is an episode whose prompt holds the conversation, so user
tokens are never in the loss or the KL; a reply's return includes the later replies' rewards; PPO and REINFORCE raise
the user's feedback; GRPO refuses conversations."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents import GRPO, PPO, REINFORCE
from agents.scoring import score_rollout
from textgen_env.dialogue import Scenario

SCENARIO = Scenario(
    name="great",
    persona="a movie fan",
    goal="hear that the movie was great",
    opening="the movie was",
    follow_ups=("i think it was",),
    rubric="keyword",
    rubric_kwargs={"keywords": ["great"]},
    satisfied_at=2.0,  # never content: every conversation has max_turns replies
)


@pytest.fixture
def dialogue_env(tiny):
    model, tokenizer = tiny

    def factory(num_envs: int = 8, **kwargs):
        settings = dict(model=model, tokenizer=tokenizer, scenarios=[SCENARIO], max_turns=2, max_reply_tokens=4)
        settings.update(max_context_tokens=64, chat_template=False, **kwargs)
        return gym.make_vec("TextDialogue-v0", num_envs=num_envs, **settings)

    return factory


def test_replies_are_episodes_with_the_conversation_as_prompt(dialogue_env, tiny):
    _, tokenizer = tiny
    agent = PPO(dialogue_env(4), episodes_per_iteration=8, minibatch_size=4, kl_coef=0.1, seed=0)
    rollout = agent.collect()
    assert len(rollout.episodes) == 8  # 4 conversations x 2 replies
    first, second = rollout.episodes[0], rollout.episodes[1]
    opening = tokenizer("the movie was")["input_ids"]
    follow_up = tokenizer("i think it was")["input_ids"]
    assert all(token in first.prompt_ids for token in opening)
    assert second.prompt_ids[: len(first.prompt_ids)] == first.prompt_ids  # the conversation grows
    tail = second.prompt_ids[len(first.prompt_ids) :]
    assert tail[: len(first.completion_ids)] == first.completion_ids  # the first reply, then the user's turn
    assert all(token in tail for token in follow_up)
    assert all(len(e.completion_ids) <= 4 for e in rollout.episodes)
    assert agent.num_timesteps == sum(len(e.completion_ids) for e in rollout.episodes)
    scored = score_rollout(agent, rollout, need_kl=True)  # the loss and KL mask: reply tokens only
    assert int(scored["mask"].sum()) == agent.num_timesteps
    rating = 1.0 if "great" in first.completion.split() else 0.0  # the keyword rubric of reply 1
    assert first.rewards[:-1] == [0.0] * (len(first.rewards) - 1)
    assert first.rewards[-1] == pytest.approx(rating + sum(second.rewards))  # plus the later reply's return


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cls", "options"),
    [(PPO, {"learning_rate": 3e-3, "epochs": 4}), (REINFORCE, {"learning_rate": 1e-2})],
    ids=["ppo", "reinforce"],
)
def test_agents_raise_the_users_feedback(dialogue_env, cls, options):
    env = dialogue_env(8)
    agent = cls(env, episodes_per_iteration=16, minibatch_size=8, kl_coef=0.0, seed=0, **options)
    feedback: list[float] = []
    collect = agent.collect

    def recorded(*args, **kwargs):
        rollout = collect(*args, **kwargs)
        feedback.append(float(np.mean(env.batch.feedback()[:, 1])))  # mean rating of each conversation
        return rollout

    agent.collect = recorded
    agent.learn(16 * 4 * 25)
    assert np.mean(feedback[:3]) < 0.25 and np.mean(feedback[-3:]) > np.mean(feedback[:3]) + 0.4, feedback


def test_grpo_refuses_conversations(dialogue_env):
    with pytest.raises(TypeError, match="Expected a TextGen-v0 vector env for GRPO"):
        GRPO(dialogue_env(4))


def test_evaluation_pairs_conversations_and_restores_the_agent(dialogue_env):
    from agents.dialogue_eval import evaluate_dialogue
    from agents.evaluation import paired_gain

    agent = PPO(dialogue_env(4), episodes_per_iteration=8, minibatch_size=4, seed=0)
    state = agent.generator.get_state()
    first = evaluate_dialogue(agent, dialogue_env(4), rounds=2, seed=7)
    again = evaluate_dialogue(agent, dialogue_env(4), rounds=2, seed=7)
    assert first.rewards == again.rewards and first.num_prompts == 8  # conversations are the units
    assert agent.num_timesteps == 0 and agent.generator.get_state().equal(state)  # training is untouched
    assert paired_gain(first, again).mean == 0.0
    assert all(s["conversation"][0]["content"] == "the movie was" for s in first.samples)
    assert first.kl.mean == pytest.approx(0.0, abs=1e-5)  # the untrained policy is its reference


@pytest.mark.slow
def test_the_main_job_trains_on_conversations(tmp_path, tiny):
    import json

    from agents.cli import main

    model, tokenizer = tiny
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    args = ["train", "--env", "dialogue", "--agent", "ppo", "--model", str(tmp_path / "tiny"), "--user", "rule"]
    args += ["--scenarios", "train", "--eval-scenarios", "eval", "--max-turns", "2", "--max-new-tokens", "4"]
    args += ["--num-envs", "4", "--steps", "64", "--episodes-per-iteration", "8", "--minibatch-size", "8"]
    args += ["--eval-samples-per-prompt", "1", "--output", str(tmp_path / "run"), "--no-tensorboard"]
    assert main(args) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["settings"]["env"] == "dialogue" and report["eval_prompts"] == 4  # 4 held-out conversations
    assert report["eval_gain_se"] >= 0 and (tmp_path / "run" / "model" / "config.json").is_file()
