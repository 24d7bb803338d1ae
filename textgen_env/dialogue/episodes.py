"""`DialogueBatch`: N parallel conversations on the one episode core (`textgen_env.episodes.EpisodeBatch`).

Each assistant reply is an episode of the core (same token actions, KV cache, modes, stop rules and rewards as
TextGen-v0) whose prompt is the conversation so far, rendered with the chat template. When a reply ends, the slot's
`User` answers; unless the conversation is over, the answer is appended and the slot restarts at once from the
longer conversation, so the next observation already holds the user's turn. User tokens are never actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from textgen_env.config import TextGenConfig
from textgen_env.dialogue.config import REPLY_ARGUMENTS, DialogueConfig, make_user
from textgen_env.dialogue.conversation import fit_to_context
from textgen_env.dialogue.scenarios import Scenario
from textgen_env.dialogue.task_user import TaskUser
from textgen_env.dialogue.users import Message, SimulatedUser, User, checked_turn, respond_all
from textgen_env.episodes import EpisodeBatch
from textgen_env.prompts import Prompt
from textgen_env.task_source import TaskSource
from textgen_env.tool_episodes import TOOL_INFO_KEYS

_TASK_ARGUMENTS = ("task", "task_kwargs", "difficulty", "task_split")
"""TextGen-v0's task arguments, which TextDialogue-v0 gives its `TaskUser`s instead of its replies."""

__all__ = ["FEEDBACK_FIELDS", "DialogueBatch", "DialogueStep"]

FEEDBACK_FIELDS = ("last_feedback", "mean_feedback", "turn_fraction", "tokens_left_fraction")
"""The entries of the ``feedback`` observation."""


def _no_reward(prompt: str, completion: str, done: bool) -> float:
    """The package reward when none is asked for: the user's feedback is the whole reward."""
    return 0.0


class DialogueStep:
    """What one `DialogueBatch.step` produced for every slot."""

    def __init__(self, num_slots: int) -> None:
        self.rewards = np.zeros(num_slots)
        self.terminated = np.zeros(num_slots, dtype=bool)
        self.infos: list[dict[str, Any]] = [{} for _ in range(num_slots)]


class DialogueBatch:
    """The conversations of N slots (see the module docstring)."""

    def __init__(self, dialogue: DialogueConfig, env_kwargs: dict[str, Any], num_slots: int) -> None:
        self.config = dialogue
        kwargs = dict(env_kwargs)
        replaced = [name for name in REPLY_ARGUMENTS if name in kwargs]
        if replaced:
            ours = list(REPLY_ARGUMENTS.values())
            raise ValueError(
                f"Expected {', '.join(ours[:-1])} and {ours[-1]} for TextDialogue-v0, got {', '.join(replaced)}"
            )
        kwargs["reward"] = kwargs.get("reward") or _no_reward
        task_kwargs = {name: kwargs.pop(name) for name in _TASK_ARGUMENTS if name in kwargs}
        self.task: TaskSource | None = None
        if task_kwargs.get("task") is not None:
            if dialogue.user not in ("rule", "task"):
                raise ValueError(f"Expected user='task' (or the default) with task=, got user={dialogue.user!r}")
            self.task = TaskSource(
                task_kwargs["task"],
                task_kwargs.get("task_kwargs"),
                task_kwargs.get("difficulty"),
                task_kwargs.get("task_split", "train"),
            )
        elif dialogue.user == "task" or any(task_kwargs.get(name) is not None for name in _TASK_ARGUMENTS):
            raise ValueError(f"Expected task= with user='task' or {', '.join(sorted(task_kwargs))}, got task=None")
        self.core = EpisodeBatch(
            TextGenConfig(
                prompts=["conversation"],  # never drawn: every reply starts from its conversation
                max_new_tokens=dialogue.max_reply_tokens,
                max_prompt_tokens=dialogue.max_context_tokens,
                **kwargs,
            ),
            num_slots,
        )
        self.gen_config = self.core.config
        self.tokenizer = self.core.tokenizer
        self.num_slots = num_slots
        self.users: list[User] = [
            TaskUser(self.task) if self.task is not None else make_user(dialogue.user, slot)
            for slot in range(num_slots)
        ]
        for user in self.users:
            if isinstance(user, SimulatedUser):
                user.bind(self.core.model, self.tokenizer)
        self.scenarios: list[Scenario | None] = [None] * num_slots
        self.conversations: list[list[Message]] = [[] for _ in range(num_slots)]
        self.feedbacks: list[list[float]] = [[] for _ in range(num_slots)]
        self.turns = np.zeros(num_slots, dtype=np.int64)
        self.returns = np.zeros(num_slots)
        self.potentials = np.zeros(num_slots)  # dense feedback: the rating of each slot's reply so far
        self.done = np.ones(num_slots, dtype=bool)

    @property
    def started(self) -> bool:
        return self.core.started

    @property
    def loaded_model(self):
        """The core's model if it is in memory (the agents' natural KL reference)."""
        return self.core.loaded_model

    def _prompt(self, slot: int) -> Prompt:
        text = fit_to_context(
            self.tokenizer,
            self.conversations[slot],
            self.config.max_context_tokens,
            template=self.config.chat_template,
        )
        return Prompt(text)

    def reset(self, mask: np.ndarray, rngs: Sequence[np.random.Generator]) -> list[dict[str, Any]]:
        """Start new conversations in the masked slots (scenario and user drawn from each slot's generator)."""
        prompts: list[Prompt | None] = [None] * self.num_slots
        for slot in np.flatnonzero(mask).tolist():
            scenarios = cast(tuple[Scenario, ...], self.config.scenarios)  # resolved by DialogueConfig.__post_init__
            scenario = scenarios[int(rngs[slot].integers(len(scenarios)))]
            self.users[slot].reset(scenario, rngs[slot])
            self.scenarios[slot] = self.users[slot].scenario  # a TaskUser's conversations are all "task"
            self.conversations[slot] = self.users[slot].opening()
            self.feedbacks[slot] = []
            self.turns[slot] = 0
            self.returns[slot] = 0.0
            self.potentials[slot] = 0.0
            self.done[slot] = False
            prompts[slot] = self._prompt(slot)
        idle = ~np.asarray(mask, dtype=bool) if self.core.started else None
        self.core.advance(None, np.asarray(mask, dtype=bool), list(rngs), idle=idle, prompts=prompts)
        return [self.info(slot) for slot in range(self.num_slots)]

    def step(self, actions: np.ndarray, rngs: Sequence[np.random.Generator], idle: np.ndarray) -> DialogueStep:
        """Append one reply token in every slot not `idle`; answer the replies that ended."""
        result = DialogueStep(self.num_slots)
        core = self.core.advance(actions, np.zeros(self.num_slots, dtype=bool), list(rngs), idle=idle)
        result.rewards[:] = core.rewards
        ended = np.flatnonzero(core.terminated & ~idle).tolist()
        shaped: dict[int, float] = {}
        if self.config.feedback_mode == "dense":  # potential-based: the rating of the reply so far
            for slot in np.flatnonzero(~idle & ~core.terminated).tolist():
                partial = [*self.conversations[slot], {"role": "assistant", "content": self.core.completions[slot]}]
                potential = self.users[slot].rate(partial)
                shaped[slot] = self.config.feedback_weight * (potential - self.potentials[slot])
                self.potentials[slot] = potential
                result.rewards[slot] += shaped[slot]
        again: list[Prompt | None] = [None] * self.num_slots
        components: dict[int, dict[str, float]] = {}
        replied: dict[int, tuple[str, str]] = {}
        for slot in ended:
            reply = self.core.completions[slot]
            replied[slot] = (self.core.prompts[slot].text, reply)
            self.conversations[slot].append({"role": "assistant", "content": reply})
            self.turns[slot] += 1
        answers = respond_all([self.users[s] for s in ended], [list(self.conversations[s]) for s in ended])
        for slot, answer in zip(ended, answers):
            turn = checked_turn(answer, f"{type(self.users[slot]).__name__}.respond")
            parts = {"feedback": 0.0, "final": 0.0}
            if turn.feedback is not None:
                self.feedbacks[slot].append(float(turn.feedback))
                paid = self.potentials[slot] if self.config.feedback_mode == "dense" else 0.0
                parts["feedback"] = self.config.feedback_weight * (float(turn.feedback) - paid)
            self.potentials[slot] = 0.0
            over = turn.done or self.turns[slot] >= self.config.max_turns
            if over:
                mean = float(np.mean(self.feedbacks[slot])) if self.feedbacks[slot] else 0.0
                parts["final"] = self.config.final_weight * mean
                self.done[slot] = True
                result.terminated[slot] = True
            else:
                self.conversations[slot].append({"role": "user", "content": turn.text})
                again[slot] = self._prompt(slot)
            result.rewards[slot] += parts["feedback"] + parts["final"]
            components[slot] = parts
        self.returns += np.where(idle, 0.0, result.rewards)
        restart = np.array([p is not None for p in again])
        if restart.any():  # the user answered: the next reply starts from the longer conversation
            self.core.advance(None, restart, list(rngs), idle=~restart, prompts=again)
        for slot in range(self.num_slots):
            info = self.info(slot)
            info.update({key: core.infos[slot][key] for key in TOOL_INFO_KEYS if key in core.infos[slot]})
            if slot in components:
                info["reward_components"] = {**info.get("reward_components", {}), **components[slot]}
                info["reply_ended"] = True
                info["prompt"], info["text"] = replied[slot]  # the reply that just ended and its prompt
            if result.terminated[slot]:
                info["episode_return"] = float(self.returns[slot])
                info["mean_feedback"] = float(np.mean(self.feedbacks[slot])) if self.feedbacks[slot] else None
            result.infos[slot] = info
        for slot in np.flatnonzero(~idle).tolist():
            if slot not in components:
                parts = dict(self.core.last_components[slot])
                if slot in shaped:
                    parts["feedback"] = shaped[slot]
                result.infos[slot]["reward_components"] = parts
        return result

    def feedback(self) -> np.ndarray:
        """(N, 4) float32 ``feedback`` observation (`FEEDBACK_FIELDS`)."""
        out = np.zeros((self.num_slots, len(FEEDBACK_FIELDS)), dtype=np.float32)
        for slot in range(self.num_slots):
            marks = self.feedbacks[slot]
            out[slot, 0] = marks[-1] if marks else 0.0
            out[slot, 1] = float(np.mean(marks)) if marks else 0.0
            out[slot, 2] = self.turns[slot] / self.config.max_turns
            used = len(self.core.completion_ids[slot])
            out[slot, 3] = 1.0 - used / self.config.max_reply_tokens
        return np.clip(out, -1e6, 1e6)

    def info(self, slot: int) -> dict[str, Any]:
        scenario = self.scenarios[slot]
        info: dict[str, Any] = {
            "conversation": [dict(m) for m in self.conversations[slot]],
            "scenario": scenario.name if scenario else None,
            "turn": int(self.turns[slot]),
            "reply": self.core.completions[slot],
            "feedback": list(self.feedbacks[slot]),
        }
        user = self.users[slot]
        if isinstance(user, TaskUser) and user.item is not None:
            info["task"] = user.info()
        return info

    def render_text(self, slot: int) -> str:
        scenario = self.scenarios[slot]
        lines = [f"Scenario: {scenario.name if scenario else '-'}"]
        for message, index in zip(self.conversations[slot], range(len(self.conversations[slot]))):
            mark = ""
            if message["role"] == "assistant":
                replies = sum(1 for m in self.conversations[slot][: index + 1] if m["role"] == "assistant")
                if replies <= len(self.feedbacks[slot]):
                    mark = f"   [feedback {self.feedbacks[slot][replies - 1]:+.2f}]"
            lines.append(f"{message['role']:>9}: {message['content']}{mark}")
        if not self.done[slot]:
            lines.append(f"assistant: {self.core.completions[slot]}▌")
        lines.append(f"return {self.returns[slot]:+.3f} | turn {self.turns[slot]}/{self.config.max_turns}")
        return "\n".join(lines) + "\n"
