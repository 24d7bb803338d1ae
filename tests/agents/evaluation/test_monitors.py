"""Reward-hacking monitors: each fires with its iteration on a run that hacks and stays quiet on a normal one."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from agents import GRPO
from agents.evaluation.monitors import HackingMonitor, MonitorConfig, RewardHackingWarning, repeated_ngram_share
from agents.rollout import RolloutBatch

NORMAL_TEXTS = ["the film was good", "i liked the music a lot", "a slow but kind story", "the cast was fine"]


def rollout(texts: list[str], lengths: list[int] | None = None, group_size: int | None = None) -> RolloutBatch:
    lengths = lengths or [len(t.split()) for t in texts]
    batch = RolloutBatch.from_token_lists([[1]] * len(texts), [[5] * n for n in lengths], 0, completions=texts)
    if group_size:
        batch.group_ids = torch.arange(len(texts)) // group_size
    return batch


def run(monitor: HackingMonitor, iterations: list[tuple[RolloutBatch, dict[str, float]]]) -> list:
    """Feed the monitor one (rollout, stats) per iteration; returns every warning it gave."""
    fired = []
    for index, (batch, stats) in enumerate(iterations, start=1):
        agent = SimpleNamespace(last_rollout=batch, iteration=index)
        fired += monitor.observe(agent, {"iteration": float(index), **stats})
    return fired


def quiet(**overrides) -> HackingMonitor:
    return HackingMonitor(issue_warnings=False, **overrides)


def test_length_drift_fires_when_a_length_reward_is_gamed():
    lengths = [6, 6, 6, 7, 8, 12, 20, 20]  # the policy learns that longer pays
    iterations = [(rollout(NORMAL_TEXTS, [n] * 4), {}) for n in lengths]
    fired = run(quiet(), iterations)
    assert [(w.monitor, w.iteration) for w in fired] == [
        ("length_drift", 6)
    ]  # 8 / 6 - 1 = 0.33, then 12 / 6 - 1 = 1 > 0.5; once
    assert fired[0].value == pytest.approx(1.0)


def test_repeated_ngrams_fire_on_looping_completions():
    hacked = ["great great great great great great"] * 4
    fired = run(quiet(), [(rollout(NORMAL_TEXTS), {}), (rollout(hacked), {})])
    assert [(w.monitor, w.iteration) for w in fired] == [("repeated_ngrams", 2)]
    assert repeated_ngram_share("a b c a b c", 3) == pytest.approx(1 / 4)  # abc bca cab abc


def test_identical_groups_fire_when_groups_collapse_to_one_answer():
    collapsed = ["great great"] * 4 + ["i loved it"] * 4
    fired = run(quiet(), [(rollout(NORMAL_TEXTS * 2, group_size=4), {}), (rollout(collapsed, group_size=4), {})])
    assert [(w.monitor, w.iteration) for w in fired] == [("identical_groups", 2)]


def test_kl_spike_fires_on_a_jump_over_the_recent_median():
    kls = [2.0, 2.2, 1.9, 2.1, 9.0, 2.0]
    fired = run(quiet(), [(rollout(NORMAL_TEXTS), {"rollout/kl": kl}) for kl in kls])
    assert [(w.monitor, w.iteration) for w in fired] == [("kl_spike", 5)]


def test_kl_spike_stays_quiet_while_the_kl_grows_steadily_from_zero():
    """The first iterations of a real default run (seed 1): the KL grows from 0 through 1 nat, which is 4.6x the
    lagging median at iteration 7 but no spike; its jump to 3.6 at iteration 10 (then back to 1.7) is one."""
    kls = [0.0, 0.09, 0.17, 0.33, 0.66, 0.74, 1.15, 0.85, 1.22, 3.63, 1.66, 2.24, 2.85]
    fired = run(quiet(), [(rollout(NORMAL_TEXTS), {"rollout/kl": kl}) for kl in kls])
    assert [(w.monitor, w.iteration) for w in fired] == [("kl_spike", 10)]


def test_reward_divergence_fires_when_training_reward_rises_and_held_out_falls():
    train = [0.1, 0.1, 0.1, 0.3, 0.5, 0.7]
    held_out = {1: 0.1, 3: 0.1, 5: 0.0, 6: -0.1}
    iterations = [
        (
            rollout(NORMAL_TEXTS),
            {"rollout/reward_mean": r, **({"eval/reward_mean": held_out[i]} if i in held_out else {})},
        )
        for i, r in enumerate(train, start=1)
    ]
    fired = run(quiet(), iterations)
    assert [(w.monitor, w.iteration) for w in fired] == [("reward_divergence", 5)]  # gain 0.4 vs -0.1: gap 0.5


def test_a_normal_run_stays_quiet():
    rng = np.random.default_rng(0)
    iterations = []
    for i in range(12):
        lengths = [int(n) for n in rng.integers(4, 7, size=8)]
        stats = {"rollout/kl": 2.0 + 0.3 * rng.standard_normal(), "rollout/reward_mean": 0.1 + 0.02 * i}
        if i % 3 == 0:
            stats["eval/reward_mean"] = 0.1 + 0.015 * i
        iterations.append((rollout(NORMAL_TEXTS * 2, lengths, group_size=4), stats))
    monitor = quiet()
    assert run(monitor, iterations) == []
    measured = {"length_drift", "repeated_ngrams", "identical_groups", "kl_spike", "reward_divergence"}
    assert {f"monitor/{name}" for name in measured} == set(monitor.latest)


def test_a_monitor_fires_again_only_after_coming_back_under():
    texts = {"loop": ["a a a a a a"] * 4, "ok": NORMAL_TEXTS}
    sequence = ["loop", "loop", "ok", "loop"]
    fired = run(quiet(), [(rollout(texts[kind]), {}) for kind in sequence])
    assert [w.iteration for w in fired] == [1, 4]


def test_warnings_are_issued_and_kept_for_the_report():
    monitor = HackingMonitor()
    with pytest.warns(RewardHackingWarning, match="iteration 1: possible reward hacking"):
        run(monitor, [(rollout(["a a a a a a"] * 4), {})])
    report = monitor.report()
    assert report["warnings"][0]["monitor"] == "repeated_ngrams" and report["warnings"][0]["iteration"] == 1
    assert report["thresholds"]["repeated_ngrams"] == 0.25


def test_monitor_reads_a_real_grpo_iteration(keyword_env):
    agent = GRPO(keyword_env(num_envs=4), group_size=4, episodes_per_iteration=4, minibatch_size=4)
    monitor = HackingMonitor()
    with warnings.catch_warnings():  # a warning on this short normal run fails the test
        warnings.simplefilter("error", RewardHackingWarning)
        agent.learn(4 * 4 * 2, callback=lambda trained, stats: bool(monitor.observe(trained, stats)) or None)
    assert agent.last_rollout is not None and agent.last_rollout.group_ids is not None
    assert "monitor/repeated_ngrams" in agent.history[-1]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"length_drift": 0}, "length_drift"), ({"ngram": 0}, "ngram"), ({"baseline_iterations": 1.5}, "baseline")],
    ids=["drift", "ngram", "baseline"],
)
def test_bad_thresholds_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        MonitorConfig(**overrides)


@pytest.mark.slow
def test_monitors_catch_a_tiny_policy_that_learns_to_loop_the_rewarded_word(tiny):
    """A reward that pays per 'great' is gamed by repeating it: the repeat and collapse monitors fire, late."""
    from textgen_env import TextGenVectorEnv

    model, tokenizer = tiny
    env = TextGenVectorEnv(
        num_envs=8,
        model=model,
        tokenizer=tokenizer,
        reward=lambda prompt, completion, done: float(completion.split().count("great")),
        max_new_tokens=6,
        prompts=["the movie was", "i think it was"],
    )
    agent = GRPO(env, group_size=4, episodes_per_iteration=8, minibatch_size=8, learning_rate=3e-2, kl_coef=0.0)
    monitor = HackingMonitor(issue_warnings=False)
    agent.learn(8 * 6 * 40, callback=lambda trained, stats: monitor.observe(trained, stats) and None)
    first = {w.monitor: w.iteration for w in monitor.warnings}
    assert agent.history[-1]["rollout/reward_mean"] > 3  # it did learn to loop (seeded: about iteration 30)
    assert {"repeated_ngrams", "identical_groups"} <= set(first)
    assert min(first.values()) > 10  # quiet while the policy still wrote ordinary (random) text
