"""Our agents on TextDialogue-v0 (tiny model): every reply is an episode whose prompt holds the conversation, so user
tokens are never in the loss or the KL; a reply's return includes the later replies' rewards; PPO, REINFORCE and GRPO
(groups: one turn of the conversations of one slot group and round) raise the user's feedback."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import GRPO, PPO, REINFORCE
from agents.functional import group_relative_advantages, grouped_relative_advantages, selective_log_softmax
from agents.grpo import group_ids
from agents.rollout import Episode
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
    episodes = rollout.to_episodes()
    assert len(episodes) == 8  # 4 conversations x 2 replies
    first, second = episodes[0], episodes[1]
    opening = tokenizer("the movie was")["input_ids"]
    follow_up = tokenizer("i think it was")["input_ids"]
    assert all(token in first.prompt_ids for token in opening)
    assert second.prompt_ids[: len(first.prompt_ids)] == first.prompt_ids  # the conversation grows
    tail = second.prompt_ids[len(first.prompt_ids) :]
    assert tail[: len(first.completion_ids)] == first.completion_ids  # the first reply, then the user's turn
    assert all(token in tail for token in follow_up)
    assert all(len(e.completion_ids) <= 4 for e in episodes)
    assert agent.num_timesteps == sum(len(e.completion_ids) for e in episodes)
    assert int(rollout.completion_mask.sum()) == agent.num_timesteps  # the loss and KL mask: reply tokens only
    rating = 1.0 if "great" in first.completion.split() else 0.0  # the keyword rubric of reply 1
    assert first.rewards[:-1] == [0.0] * (len(first.rewards) - 1)
    assert first.rewards[-1] == pytest.approx(rating + sum(second.rewards))  # plus the later reply's return


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cls", "options"),
    [
        (PPO, {"learning_rate": 3e-3, "epochs": 4}),
        (REINFORCE, {"learning_rate": 1e-2}),
        (GRPO, {"learning_rate": 1e-2, "group_size": 4}),
    ],
    ids=["ppo", "reinforce", "grpo"],
)
def test_agents_raise_the_users_feedback(dialogue_env, cls, options):
    env = dialogue_env(8)
    agent = cls(env, episodes_per_iteration=16, minibatch_size=8, kl_coef=0.0, seed=0, **options)
    feedback: list[float] = []
    collect = agent.collect

    def recorded(*args, **kwargs):
        rollout = collect(*args, **kwargs)
        feedback.append(float(np.mean([np.mean(env.conversation(i).ratings or [0.0]) for i in range(env.num_envs)])))
        return rollout

    agent.collect = recorded
    agent.learn(16 * 4 * 25)
    assert np.mean(feedback[:3]) < 0.25 and np.mean(feedback[-3:]) > np.mean(feedback[:3]) + 0.4, feedback


def _ids(episodes: list[Episode], group_size: int) -> torch.Tensor:
    """`group_ids` over episodes' slots and turns."""
    slots = torch.tensor([e.slot for e in episodes], dtype=torch.int64)
    return group_ids(slots, torch.tensor([e.turn for e in episodes], dtype=torch.int64), group_size)


def _episode(slot: int, turn: int) -> Episode:
    return Episode("p", "c", [1], [2], [0.0], [0.0], slot=slot, turn=turn)


def test_grpo_groups_are_one_turn_of_a_slot_group_in_one_round():
    # round 0: slots 0-3 (groups of 2) with 2, 1, 3 and 1 replies; round 1: slots 0-1 with 1 reply each
    pattern = [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1), (2, 2), (3, 0), (0, 0), (1, 0)]
    ids = _ids([_episode(slot, turn) for slot, turn in pattern], group_size=2).tolist()
    assert ids == [0, 1, 0, 2, 3, 4, 2, 5, 5]
    scores = torch.tensor([1.0, 2.0, 3.0, 0.0, 5.0, 7.0, 4.0, 1.0, 1.0])
    advantages = grouped_relative_advantages(scores, torch.tensor(ids), normalize_std=False).tolist()
    assert advantages == [-1.0, 0.0, 1.0, -2.0, 0.0, 0.0, 2.0, 0.0, 0.0]  # groups of one get 0


def test_grpo_groups_on_textgen_are_consecutive_completions(keyword_env):
    agent = GRPO(keyword_env(8), group_size=4, episodes_per_iteration=16, minibatch_size=8, seed=0)
    episodes = agent.collect().to_episodes()  # two rounds of 8 slots
    ids = _ids(episodes, 4)
    assert ids.tolist() == (torch.arange(16) // 4).tolist()
    scores = torch.tensor([e.score for e in episodes])
    for normalize_std in (True, False):  # the fixed-size path: the same numbers, bit for bit
        fixed = group_relative_advantages(scores, 4, normalize_std=normalize_std)
        assert torch.equal(fixed, grouped_relative_advantages(scores, ids, normalize_std=normalize_std))


def test_grpo_groups_replies_by_slot_group_turn_and_round(dialogue_env):
    content = dataclasses.replace(  # content once a reply has a common word: conversations of 1 to 3 replies
        SCENARIO, rubric_kwargs={"keywords": ["the", "a", "it", "is", "was", "i", "and"]}, satisfied_at=0.1
    )
    other = dataclasses.replace(content, name="other", opening="i think the story is")
    env = dialogue_env(8, scenarios=[content, other], max_turns=3)
    agent = GRPO(env, group_size=4, episodes_per_iteration=8, minibatch_size=8, seed=2)
    rounds = [agent._collect_round(agent.reset_seeds(r), agent.config.temperature) for r in range(2)]
    episodes = rounds[0] + rounds[1]
    ids = _ids(episodes, 4).tolist()
    keys = [(r, e.slot // 4, e.turn) for r, part in enumerate(rounds) for e in part]
    for a, b in zip(ids, keys):
        assert [x == a for x in ids] == [k == b for k in keys]  # same group <=> same round, slot group and turn
    assert not set(ids[: len(rounds[0])]) & set(ids[len(rounds[0]) :])  # two rounds never share a group
    assert [(e.slot, e.turn) for e in rounds[1]] == sorted((e.slot, e.turn) for e in rounds[1])  # what ids rely on
    assert len(set(np.bincount(ids).tolist())) > 1, "expected groups of several sizes"
    openings = [e.prompt.split("\n")[0] for e in episodes]  # "User: <the scenario's opening>"
    assert len(set(openings)) == 2, "expected both scenarios"
    for group in set(ids):
        members = [e for e, i in zip(episodes, ids) if i == group]
        if members[0].turn == 0:  # first replies of a group answer the very same prompt
            assert all(m.prompt_ids == members[0].prompt_ids for m in members)
        assert len({m.prompt.split("\n")[0] for m in members}) == 1  # one scenario per group


def test_grpo_on_conversations_keeps_user_tokens_out_of_the_loss(dialogue_env, tiny):
    _, tokenizer = tiny
    agent = GRPO(dialogue_env(4), group_size=2, episodes_per_iteration=8, minibatch_size=4, kl_coef=0.1, seed=0)
    rollout = agent.collect()
    episodes = rollout.to_episodes()
    assert len(episodes) == 8 and rollout.turns.tolist() == [0, 1] * 4
    follow_up = tokenizer("i think it was")["input_ids"]
    for first, second in zip(episodes[::2], episodes[1::2]):
        tail = second.prompt_ids[len(first.prompt_ids) :]
        assert tail[: len(first.completion_ids)] == first.completion_ids  # the reply, then the user's turn
        assert all(token in tail[len(first.completion_ids) :] for token in follow_up)
    assert int(rollout.completion_mask.sum()) == agent.num_timesteps  # what GRPO's loss masks with: replies only
    with torch.no_grad():
        logits = agent.policy.score(rollout, temperature=agent.config.temperature).logits
    scored = selective_log_softmax(logits, rollout.actions) * rollout.completion_mask
    torch.testing.assert_close(scored, rollout.logprobs, atol=1e-4, rtol=0)  # the actions
    stats = agent.update(rollout)
    assert np.isfinite(list(stats.values())).all() and stats["rollout/kl"] >= 0


def test_grpo_still_refuses_other_envs():
    with pytest.raises(TypeError, match="Expected a TextGenVectorEnv or TextGenEnv, got"):
        GRPO(gym.make_vec("CartPole-v1", num_envs=4))


def test_evaluation_pairs_conversations_and_restores_the_agent(dialogue_env):
    from agents.evaluation import paired_gain
    from agents.evaluation.dialogue import evaluate_dialogue

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
@pytest.mark.parametrize(("agent", "scenarios"), [("ppo", "--scenarios"), ("grpo", "--scenario")], ids=["ppo", "grpo"])
def test_the_main_job_trains_on_conversations(tmp_path, tiny, agent, scenarios, monkeypatch, capsys):
    import json

    import agents.app.training
    from agents.app.cli import main

    titles = []
    plot_curves = agents.app.training.plot_curves
    monkeypatch.setattr(
        agents.app.training, "plot_curves", lambda *a, **kw: titles.append(kw["title"]) or plot_curves(*a, **kw)
    )

    model, tokenizer = tiny
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    args = ["train", "--env", "dialogue", "--agent", agent, "--model", str(tmp_path / "tiny"), "--user", "rule"]
    args += [scenarios, "train", "--eval-scenarios", "eval", "--max-turns", "2", "--max-new-tokens", "4"]
    args += ["--num-envs", "4", "--steps", "64", "--episodes-per-iteration", "8", "--minibatch-size", "8"]
    args += ["--eval-samples-per-prompt", "1", "--output", str(tmp_path / "run"), "--no-tensorboard"]
    assert main(args) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["settings"]["env"] == "dialogue" and report["eval_prompts"] == 4  # 4 held-out conversations
    assert report["settings"]["agent"] == agent and report["settings"]["scenarios"] == "train"
    assert report["reward"] == "rule user's rating" and titles[0].endswith("reward: rule user's rating")
    assert report["eval_gain_se"] >= 0 and (tmp_path / "run" / "model" / "config.json").is_file()
    by_scenario = report["eval_gain_by_scenario"]  # the held-out gain split by scenario adds back up to the gain
    assert set(by_scenario) <= {"recipe", "complaint"}
    assert sum(row["conversations"] for row in by_scenario.values()) == report["eval_prompts"]
    weighted = sum(row["gain"] * row["conversations"] for row in by_scenario.values()) / report["eval_prompts"]
    assert weighted == pytest.approx(report["eval_gain"], abs=1e-9)

    # textgen-env eval --env dialogue re-scores the saved model: with the run's settings and seed it meets the same
    # conversations and gives the run's own before/after numbers
    capsys.readouterr()
    args = ["eval", "--env", "dialogue", "--model", str(tmp_path / "run" / "model"), "--gain"]
    args += ["--reference", str(tmp_path / "tiny"), "--user", "rule", "--eval-scenarios", "eval", "--max-turns", "2"]
    assert main([*args, "--max-new-tokens", "4", "--num-envs", "4", "--samples", "1", "--seed", "0"]) == 0
    rescored = json.loads(capsys.readouterr().out)
    assert rescored["completions"] == report["eval_prompts"]
    assert rescored["reward"] == pytest.approx(report["eval_reward_after"], abs=1e-5)
    assert rescored["reward_before"] == pytest.approx(report["eval_reward_before"], abs=1e-5)
    assert rescored["gain"] == pytest.approx(report["eval_gain"], abs=1e-5)
    assert rescored["kl"] == pytest.approx(report["eval_kl"], abs=1e-4)
    assert rescored["gain_by_scenario"].keys() == by_scenario.keys()


def test_later_replies_total_sums_over_the_rest_of_each_conversation():
    from agents.rollout import conversation_ids, later_replies_total

    # round 0: slot 0 has 3 replies, slot 1 one; round 1: slot 0 has 2 replies
    slots = torch.tensor([0, 0, 0, 1, 0, 0])
    turns = torch.tensor([0, 1, 2, 0, 0, 1])
    per_row = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    assert conversation_ids(slots, turns).tolist() == [0, 0, 0, 1, 2, 2]
    assert later_replies_total(per_row, slots, turns).tolist() == [6.0, 4.0, 0.0, 0.0, 32.0, 0.0]


@pytest.mark.parametrize("cls", [PPO, REINFORCE])
def test_a_reply_is_charged_the_kl_of_its_conversations_later_replies(dialogue_env, cls):
    """With the KL penalty in the reward, a first reply's return is the conversation's: every reply's env reward and
    every reply's k1 penalty (as the env adds later replies' rewards, the agent adds their KL)."""
    beta = 0.5
    agent = cls(dialogue_env(4), episodes_per_iteration=8, minibatch_size=4, kl_coef=beta, kl_target=None, seed=0)
    with torch.no_grad():  # away from the reference, so the penalty is not 0
        for param in agent.policy.trainable_parameters():
            param.add_(0.3 * torch.randn_like(param))
    rollout = agent.collect()
    rewards, _ = agent.rewards_with_kl_penalty(rollout)
    assert rollout.reference_logprobs is not None
    mask = rollout.completion_mask
    k1 = ((rollout.logprobs - rollout.reference_logprobs) * mask).sum(dim=1).double()  # (N,)
    assert rollout.turns.tolist() == [0, 1] * 4 and k1.abs().max() > 0.01
    for first in range(0, 8, 2):  # first replies: their return is the whole conversation's
        expected = rollout.scores[first] - beta * (k1[first] + k1[first + 1])
        assert float((rewards[first] * mask[first]).sum()) == pytest.approx(float(expected), abs=1e-4)
        second = first + 1
        expected = rollout.scores[second] - beta * k1[second]
        assert float((rewards[second] * mask[second]).sum()) == pytest.approx(float(expected), abs=1e-4)


def test_grpo_charges_a_reply_the_kl_still_to_come_in_its_conversation(dialogue_env):
    from agents.functional import kl_to_go, masked_sum

    beta = 0.5
    agent = GRPO(
        dialogue_env(4),
        group_size=2,
        episodes_per_iteration=8,
        minibatch_size=4,
        kl_coef=beta,
        kl_target=None,
        kl_score_baseline=False,
        scale_rewards=False,
        seed=0,
    )
    with torch.no_grad():
        for param in agent.policy.trainable_parameters():
            param.add_(0.3 * torch.randn_like(param))
    rollout = agent.collect()
    agent.update(rollout)
    assert rollout.kl is not None and rollout.advantages is not None and rollout.group_ids is not None
    mask = rollout.completion_mask
    group = grouped_relative_advantages(rollout.scores.float(), rollout.group_ids, normalize_std=False)
    per_reply = masked_sum(rollout.kl, mask, dim=1)
    within = kl_to_go(rollout.kl, mask)
    for row in range(8):
        later = float(per_reply[row + 1]) if rollout.turns[row] == 0 else 0.0  # the conversation's second reply
        expected = group[row] - beta * (within[row] + later)
        torch.testing.assert_close(rollout.advantages[row][mask[row]], expected[mask[row]].float(), atol=1e-5, rtol=0)
