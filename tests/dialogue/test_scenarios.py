"""The built-in conversation scenarios: sets, rubrics, and the held-out split."""

from __future__ import annotations

import numpy as np
import pytest

from textgen_env.dialogue import RuleBasedUser
from textgen_env.dialogue.scenarios import SCENARIO_SETS, SCENARIOS, resolve_scenarios


def _rate(name: str, reply: str) -> float:
    """The rating a user of scenario `name` gives `reply` to its opening line."""
    user = RuleBasedUser()
    user.reset(SCENARIOS[name], np.random.default_rng(0))
    return user.rate([{"role": "user", "content": SCENARIOS[name].opening}, {"role": "assistant", "content": reply}])


def test_train_and_eval_hold_different_scenarios():
    train, held_out = set(SCENARIO_SETS["train"]), set(SCENARIO_SETS["eval"])
    assert train and held_out and not train & held_out
    assert set(SCENARIO_SETS["all"]) == set(SCENARIOS) >= train | held_out
    assert [s.name for s in resolve_scenarios("train")] == list(SCENARIO_SETS["train"])


@pytest.mark.parametrize("name", sorted(SCENARIOS), ids=sorted(SCENARIOS))
def test_every_rubric_rates_a_reply_between_its_bounds(name):
    for reply in ("", "ok", "I am so sorry, I apologise: your refund, with toast and eggs, comes in ten minutes."):
        assert -1.0 <= _rate(name, reply) <= 1.0 + SCENARIOS[name].rubric_shift


@pytest.mark.parametrize(
    ("held_out", "trained", "reply"),
    [
        ("complaint", "late_delivery", "I am so sorry, and I apologize."),
        ("complaint", "refund", "I am so sorry, and I apologize."),
        ("recipe", "pantry", "That takes ten minutes and tastes great."),
    ],
    ids=["complaint-apology-late_delivery", "complaint-apology-refund", "recipe-minutes-pantry"],
)
def test_held_out_scenarios_rate_skills_a_training_scenario_teaches(held_out, trained, reply):
    """The held-out rubrics reward what some training rubric also rewards, so what is learned can carry over."""
    assert trained in SCENARIO_SETS["train"] and held_out in SCENARIO_SETS["eval"]
    assert _rate(held_out, reply) > _rate(held_out, "ok")
    assert _rate(trained, reply) > _rate(trained, "ok")
