"""The user side of a conversation: a `User` answers each assistant reply with a `UserTurn` (text, feedback, done).

* `RuleBasedUser`: deterministic and cheap (tests, fast experiments): rates the reply with the scenario's rubric
  and says the scenario's next follow-up line.
* `SimulatedUser`: an LM (the env's own, or any Hugging Face model) plays the scenario's persona and writes the
  user's answer, sampled with the env's seeded generator; the rating is the scenario's rubric.
* `HumanUser`: a person answers in the terminal or through a callback; every turn is appended to a JSONL log and
  fsynced at once (`textgen_env.rewards.human.append_jsonl`), so a crash loses nothing.
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import numpy as np

from textgen_env.dialogue.scenarios import Scenario
from textgen_env.generation import LMWriter, torch_generator
from textgen_env.rewards import RewardSpec, make_reward
from textgen_env.rewards.human import append_jsonl

__all__ = [
    "HumanUser",
    "Message",
    "RuleBasedUser",
    "SimulatedUser",
    "User",
    "UserTurn",
    "checked_turn",
    "respond_all",
]

Message = dict[str, str]
"""One message of a conversation: ``{"role": "user" | "assistant" | "system", "content": text}``."""


@dataclass(frozen=True)
class UserTurn:
    """What the user does after a reply."""

    text: str
    """The user's next message (ignored when `done`)."""
    feedback: float | None = None
    """The user's rating of the reply (None: no rating this turn)."""
    done: bool = False
    """Whether the user ends the conversation."""


def checked_turn(turn: object, source: str) -> UserTurn:
    """`turn` if it is a well-formed `UserTurn`; else a TypeError naming the field that is wrong."""
    if not isinstance(turn, UserTurn):
        raise TypeError(f"Expected {source} to return a UserTurn, got {type(turn).__name__}")
    if not isinstance(turn.text, str):
        raise TypeError(f"Expected UserTurn.text from {source} to be a str, got {type(turn.text).__name__}")
    feedback = turn.feedback
    if feedback is not None and (
        isinstance(feedback, bool) or not isinstance(feedback, numbers.Real) or not math.isfinite(feedback)
    ):
        raise TypeError(f"Expected UserTurn.feedback from {source} to be a finite number or None, got {feedback!r}")
    if not isinstance(turn.done, (bool, np.bool_)):
        raise TypeError(f"Expected UserTurn.done from {source} to be a bool, got {turn.done!r}")
    return turn


class User(abc.ABC):
    """Base class: `reset` starts a conversation of a scenario, `respond` answers the latest assistant reply."""

    scenario: Scenario
    np_random: np.random.Generator

    def reset(self, scenario: Scenario, np_random: np.random.Generator) -> None:
        """Start a conversation of `scenario`; `np_random` is the env's seeded generator for this slot."""
        self.scenario, self.np_random, self.turn = scenario, np_random, 0
        rubric = cast(RewardSpec, scenario.rubric)  # a Mapping[str, float] is one, but Mapping keys are invariant
        self._rubric = make_reward(rubric, dict(scenario.rubric_kwargs) or None)

    def opening(self) -> list[Message]:
        """The messages that open the conversation (after `reset`): the scenario's opening line."""
        return [{"role": "user", "content": self.scenario.opening}]

    def rate(self, conversation: Sequence[Message]) -> float:
        """The scenario's rubric score of the last assistant reply, given the user message before it."""
        reply = conversation[-1]["content"]
        asked = next((m["content"] for m in reversed(conversation[:-1]) if m["role"] == "user"), "")
        return float(self._rubric([asked], [reply], [True])[0]) + self.scenario.rubric_shift

    @abc.abstractmethod
    def respond(self, conversation: Sequence[Message]) -> UserTurn:
        """The user's turn after the last assistant reply of `conversation`."""


class RuleBasedUser(User):
    """Rates with the rubric; answers with the scenario's follow-ups in turn; done once content."""

    def respond(self, conversation: Sequence[Message]) -> UserTurn:
        feedback = self.rate(conversation)
        text = self.scenario.follow_ups[self.turn % len(self.scenario.follow_ups)]
        self.turn += 1
        return UserTurn(text=text, feedback=feedback, done=feedback >= self.scenario.satisfied_at)


class SimulatedUser(User):
    """An LM plays the user: persona and goal as its instructions, the conversation with the roles swapped.

    Args:
        model: a causal LM, or None for the env's own model (set by the env).
        tokenizer: its tokenizer (None with the env's model).
        max_tokens: tokens of the user's answer at most.
        temperature: sampling temperature of the answer.
    """

    def __init__(self, model: Any = None, tokenizer: Any = None, *, max_tokens: int = 24, temperature: float = 0.8):
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"Expected max_tokens to be an int >= 1, got {max_tokens!r}")
        if not (isinstance(temperature, numbers.Real) and temperature > 0):
            raise ValueError(f"Expected temperature to be a number > 0, got {temperature!r}")
        self.model: Any = model
        self.tokenizer: Any = tokenizer
        self.max_tokens: int = max_tokens
        self.temperature: float = float(temperature)
        self._writer: LMWriter | None = None

    def bind(self, model: Any, tokenizer: Any) -> None:
        """Use the env's model where none was given (called by the env)."""
        if self.model is None:
            self.model, self.tokenizer = model, tokenizer

    def prompt_ids(self, conversation: Sequence[Message]) -> list[int]:
        """The LM's prompt for the user's answer: persona and goal as instructions, the roles swapped."""
        from textgen_env.dialogue.conversation import render

        swapped = [{"role": "system", "content": f"{self.scenario.persona} {self.scenario.goal} Answer briefly."}]
        swapped += [
            {"role": "assistant" if m["role"] == "user" else "user", "content": m["content"]}
            for m in conversation
            if m["role"] != "system"
        ]
        return self.tokenizer(render(self.tokenizer, swapped))["input_ids"][-256:]

    def writer(self) -> LMWriter:
        """The sampler of the answers (`textgen_env.generation.LMWriter`: batched, KV-cached, seeded per row)."""
        if self._writer is None:
            self._writer = LMWriter(self.model, self.tokenizer, temperature=self.temperature)
        return self._writer

    def turn_for(self, conversation: Sequence[Message], text: str) -> UserTurn:
        """The user's turn once its answer `text` is written."""
        feedback = self.rate(conversation)
        self.turn += 1
        return UserTurn(text=text.strip() or "...", feedback=feedback, done=feedback >= self.scenario.satisfied_at)

    def respond(self, conversation: Sequence[Message]) -> UserTurn:
        return respond_all([self], [conversation])[0]


def respond_all(users: Sequence[User], conversations: Sequence[Sequence[Message]]) -> list[UserTurn]:
    """Every user's answer to its conversation; the simulated users of one model write theirs in one batch, each
    with noise from its own generator (so a slot's answer does not depend on the others)."""
    turns: list[UserTurn | None] = [None] * len(users)
    batches: dict[int, list[int]] = {}
    simulated: dict[int, SimulatedUser] = {}
    for i, user in enumerate(users):
        if isinstance(user, SimulatedUser):
            batches.setdefault(id(user.model), []).append(i)
            simulated[i] = user
        else:
            turns[i] = user.respond(conversations[i])
    for rows in batches.values():
        first = simulated[rows[0]]
        prompts = [simulated[i].prompt_ids(conversations[i]) for i in rows]
        generators = [torch_generator(simulated[i].np_random) for i in rows]
        longest = max(simulated[i].max_tokens for i in rows)
        texts = first.writer().sample(prompts, longest, generators)
        for i, text in zip(rows, texts):
            turns[i] = simulated[i].turn_for(conversations[i], text)
    return cast(list[UserTurn], turns)  # every row was answered above


class HumanUser(User):
    """A person answers: through `callback(conversation) -> (text, rating or None, done)`, or in the terminal.

    Every turn is appended to `log_path` at once (JSONL, fsynced): the scenario, the conversation so far, the
    person's text, rating and whether they ended it.
    """

    def __init__(
        self,
        callback: Callable[[Sequence[Message]], tuple[str, float | None, bool]] | None = None,
        *,
        log_path: str | Path | None = "dialogue_feedback.jsonl",
        input_fn: Callable[[str], str] = input,
        print_fn: Callable[..., None] = print,
    ) -> None:
        if callback is not None and not callable(callback):
            raise TypeError(f"Expected callback to be callable or None, got {type(callback).__name__}")
        self.callback, self.log_path, self.input_fn, self.print_fn = callback, log_path, input_fn, print_fn

    def _ask(self, conversation: Sequence[Message]) -> tuple[str, float | None, bool]:
        self.print_fn(f"\nAssistant: {conversation[-1]['content']}")
        rating = self.input_fn("Your rating of that reply (0-1, empty to skip): ").strip()
        text = self.input_fn("Your answer (empty to end the conversation): ")
        return text, (float(rating) if rating else None), not text.strip()

    def respond(self, conversation: Sequence[Message]) -> UserTurn:
        text, feedback, done = self.callback(conversation) if self.callback else self._ask(conversation)
        turn = checked_turn(UserTurn(text=text, feedback=feedback, done=bool(done)), "HumanUser's callback")
        if self.log_path is not None:
            append_jsonl(
                self.log_path,
                {
                    "scenario": self.scenario.name,
                    "conversation": list(conversation),
                    "text": turn.text,
                    "feedback": turn.feedback,
                    "done": turn.done,
                    "time": datetime.now(timezone.utc).isoformat(),
                },
            )
        self.turn += 1
        return turn
