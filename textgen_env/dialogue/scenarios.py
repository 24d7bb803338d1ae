"""Built-in conversation scenarios for TextDialogue-v0: who the user is, what they want, and how they rate a reply.

Written for this project. Each scenario's `rubric` is a package reward (`textgen_env.rewards`) of the assistant's
reply (plus its `rubric_shift`), between -1 and 1; the simulated and rule-based users report it as their feedback.
The sets ``train`` and ``eval`` hold different scenarios, so feedback can be measured on held-out ones. The held-out
ones are new situations of kinds the training set covers: an upset customer who wants an apology and a fix
(``complaint``; trained on ``refund`` and ``late_delivery``) and a practical question about what the user has at hand
(``recipe``; trained on ``pantry``), rated on apologising, using the user's own words and a friendly tone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SCENARIOS", "SCENARIO_SETS", "Scenario", "resolve_scenarios"]


@dataclass(frozen=True)
class Scenario:
    """One kind of conversation."""

    name: str
    persona: str
    """Who the user is (the simulated user's system prompt)."""
    goal: str
    """What the user wants from the assistant."""
    opening: str
    """The user's first message."""
    follow_ups: tuple[str, ...]
    """What a rule-based user says next, in turn (cycled)."""
    rubric: str | Mapping[str, float]
    """Package reward (name or {name: weight}) that rates the assistant's reply."""
    rubric_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Arguments of the rubric reward."""
    rubric_shift: float = 0.0
    """Added to the rubric's score (the length reward's [-1, 0] becomes [0, 1])."""
    satisfied_at: float = 0.6
    """Feedback at or above which the user ends the conversation content."""


SCENARIOS: dict[str, Scenario] = {
    "refund": Scenario(
        name="refund",
        persona="You are a customer who bought headphones that broke after a week.",
        goal="Get a refund, and an apology.",
        opening="Hi, my headphones broke after one week. I want my money back.",
        follow_ups=("So can I get a refund or not?", "I still have the receipt. What do I do now?"),
        rubric="regex",
        rubric_kwargs={"patterns": [r"\bsorry\b", r"\brefund", r"\bapologi[sz]"]},
    ),
    "explain": Scenario(
        name="explain",
        persona="You are a student who missed the lecture on photosynthesis.",
        goal="Understand how plants make food from light, in simple words.",
        opening="Can you explain photosynthesis to me? I missed the class.",
        follow_ups=("What does the sunlight do exactly?", "And why do plants need water for it?"),
        rubric={"regex": 0.7, "readability": 0.3},
        rubric_kwargs={"regex": {"patterns": [r"\blight\b", r"\bsun", r"\benergy\b", r"\bsugars?\b", r"\bwater\b"]}},
    ),
    "short_answer": Scenario(
        name="short_answer",
        persona="You are a busy person who wants quick, short answers.",
        goal="Get a one-line answer.",
        opening="Quick question: what is the capital of France?",
        follow_ups=("And of Spain? Keep it short.", "And Italy?"),
        rubric="length",
        rubric_kwargs={"target": 4},
        rubric_shift=1.0,
        satisfied_at=0.9,
    ),
    "late_delivery": Scenario(
        name="late_delivery",
        persona="You are a hungry customer whose pizza delivery is an hour late.",
        goal="Get an apology, and know when the food will arrive.",
        opening="I ordered a pizza an hour ago and it still has not arrived.",
        follow_ups=("How many more minutes will it take?", "Can I get something for the long wait?"),
        rubric={"regex": 0.7, "sentiment": 0.3},
        rubric_kwargs={
            "regex": {"patterns": [r"\bsorry\b", r"\bapologi[sz]", r"\bpizza", r"\bminutes?\b", r"\bsoon\b"]}
        },
    ),
    "pantry": Scenario(
        name="pantry",
        persona="You are a student with only rice, beans and an onion in the kitchen.",
        goal="Get a simple dinner idea that uses what is there.",
        opening="I only have rice, beans and an onion. What can I make for dinner?",
        follow_ups=("How long does it take to cook?", "Can I make it a bit spicy?"),
        rubric={"regex": 0.7, "sentiment": 0.3},
        rubric_kwargs={"regex": {"patterns": [r"\brice\b", r"\bbeans?\b", r"\bonions?\b", r"\bminutes?\b"]}},
    ),
    "recipe": Scenario(
        name="recipe",
        persona="You are a hungry person with eggs, bread and cheese at home.",
        goal="Get a friendly idea for a quick meal.",
        opening="I have eggs, bread and cheese. What can I cook tonight?",
        follow_ups=("Sounds good, how long does it take?", "Anything I can add to it?"),
        rubric={"regex": 0.7, "sentiment": 0.3},
        rubric_kwargs={"regex": {"patterns": [r"\beggs?\b", r"\bcheese", r"\bbread\b", r"\btoast", r"\bminutes?\b"]}},
    ),
    "complaint": Scenario(
        name="complaint",
        persona="You are an upset hotel guest whose room was not cleaned.",
        goal="Be heard and get the room cleaned today.",
        opening="My room was not cleaned yesterday and it is still dirty. This is not ok.",
        follow_ups=("When exactly will someone come?", "Will I get anything for the trouble?"),
        rubric={"regex": 0.7, "sentiment": 0.3},
        rubric_kwargs={"regex": {"patterns": [r"\bsorry\b", r"\bclean", r"\btoday\b", r"\bapologi[sz]"]}},
    ),
}
"""Every built-in scenario by name."""

SCENARIO_SETS: dict[str, tuple[str, ...]] = {
    "train": ("refund", "explain", "short_answer", "late_delivery", "pantry"),
    "eval": ("recipe", "complaint"),
    "all": tuple(SCENARIOS),
}
"""Named groups of scenarios: ``train`` and the held-out ``eval``."""


def resolve_scenarios(spec: str | Scenario | Sequence[str | Scenario]) -> tuple[Scenario, ...]:
    """Scenarios from a name, a set name (``train``, ``eval``, ``all``), a `Scenario`, or a list of those.

    Raises:
        ValueError: an unknown name (the valid ones are listed) or an empty list.
    """
    items = [spec] if isinstance(spec, (str, Scenario)) else list(spec)
    if not items:
        raise ValueError("Expected at least one scenario, got an empty list")
    resolved: list[Scenario] = []
    for item in items:
        if isinstance(item, Scenario):
            resolved.append(item)
        elif isinstance(item, str) and item in SCENARIO_SETS:
            resolved.extend(SCENARIOS[name] for name in SCENARIO_SETS[item])
        elif isinstance(item, str) and item in SCENARIOS:
            resolved.append(SCENARIOS[item])
        else:
            valid = sorted(SCENARIOS) + sorted(SCENARIO_SETS)
            raise ValueError(f"Expected scenario to be one of {valid} or a Scenario, got {item!r}")
    return tuple(resolved)
