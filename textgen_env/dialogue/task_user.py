"""`TaskUser`: the user of a task conversation: asks a task's question, checks each reply, asks again until right.

With ``TextDialogue-v0(task="arithmetic", ...)`` every slot's user is a `TaskUser` over the env's `TaskSource`: the
conversation opens with the item's messages (the system prompt stating the answer format, then the question); after
each reply the user scores it with the task's checker, rates it 1 (correct) or 0 (the rating is in the ``feedback``
observation and pays ``feedback_weight``), and either ends the conversation content or says ``retry_message``, so
the model can learn to correct itself from feedback within ``max_turns`` replies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from textgen_env.dialogue.scenarios import Scenario
from textgen_env.dialogue.users import Message, User, UserTurn
from textgen_env.task_source import TaskSource, task_info

__all__ = ["RETRY_MESSAGE", "TASK_SCENARIO", "TaskUser"]

RETRY_MESSAGE = "That is not right. Try again."
"""What a `TaskUser` says after a wrong reply."""
TASK_SCENARIO = Scenario(
    name="task",
    persona="You ask a question with a checkable answer.",
    goal="Get the right answer.",
    opening="",
    follow_ups=(RETRY_MESSAGE,),
    rubric="length",  # never used: a TaskUser rates with the task's checker
    satisfied_at=1.0,
)
"""The scenario every task conversation reports (its question comes from the task item)."""


class TaskUser(User):
    """Asks an item of `source`, rates each reply by the task's checker, ends when it is right.

    Args:
        source: the env's items, scores and curriculum (shared by the slots' users).
        retry_message: what the user says after a wrong reply.
    """

    def __init__(self, source: TaskSource, *, retry_message: str = RETRY_MESSAGE) -> None:
        if not isinstance(retry_message, str) or not retry_message.strip():
            raise ValueError(f"Expected retry_message to be a non-empty string, got {retry_message!r}")
        self.source = source
        self.retry_message = retry_message
        self.item: Any = None
        self.last_scores: dict[str, float] | None = None

    def reset(self, scenario: Scenario, np_random: np.random.Generator) -> None:
        """Draw this conversation's item from the slot's generator (`scenario` is the env's; ignored)."""
        self.scenario, self.np_random, self.turn = TASK_SCENARIO, np_random, 0
        self.item = self.source.sample(np_random)
        self.last_scores = None

    def opening(self) -> list[Message]:
        """The item's messages: the answer format as the system prompt, then the question."""
        return [dict(message) for message in self.item.messages()]

    def rate(self, conversation: Sequence[Message]) -> float:
        """1.0 when the last assistant reply answers the item correctly, else 0.0."""
        return float(self.source.score(conversation[-1]["content"], self.item).get("correct", 0.0))

    def respond(self, conversation: Sequence[Message]) -> UserTurn:
        self.last_scores = self.source.score(conversation[-1]["content"], self.item)
        correct = float(self.last_scores.get("correct", 0.0))
        self.source.record(correct)
        self.turn += 1
        if correct >= 1.0:
            return UserTurn(text="", feedback=1.0, done=True)
        return UserTurn(text=self.retry_message, feedback=0.0, done=False)

    def info(self) -> dict[str, Any]:
        """``info["task"]``: name, question, reference answer, difficulty, and the last reply's scores."""
        return task_info(self.source.name, self.item, self.last_scores)
