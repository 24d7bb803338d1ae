"""`TextDialogueEnv` and `TextDialogueVectorEnv`: multi-turn conversations with a user as Gymnasium environments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from textgen_env.config_docs import document_arguments
from textgen_env.dialogue.config import DialogueConfig, dialogue_arguments_table
from textgen_env.dialogue.episodes import FEEDBACK_FIELDS, DialogueBatch
from textgen_env.spaces import action_space, observation_space

__all__ = ["ConversationState", "TextDialogueEnv", "TextDialogueVectorEnv"]


@dataclass(frozen=True)
class ConversationState:
    """One slot's conversation as `TextDialogueVectorEnv.conversation` reports it."""

    scenario: str | None
    """The scenario's name (None before the first reset)."""
    messages: tuple[dict[str, str], ...]
    """The conversation so far, as chat messages (``{"role": ..., "content": ...}``), the user's turns included."""
    ratings: tuple[float, ...]
    """The user's rating of each assistant reply so far, in order."""
    replies: int
    """Assistant replies written so far."""


_DIALOGUE_FIELDS = {
    "scenarios",
    "user",
    "max_turns",
    "max_reply_tokens",
    "max_context_tokens",
    "feedback_weight",
    "final_weight",
    "chat_template",
    "feedback_mode",
}


def _split(kwargs: dict[str, Any]) -> tuple[DialogueConfig, dict[str, Any]]:
    dialogue = DialogueConfig(**{k: v for k, v in kwargs.items() if k in _DIALOGUE_FIELDS})
    return dialogue, {k: v for k, v in kwargs.items() if k not in _DIALOGUE_FIELDS}


def _spaces(batch: DialogueBatch) -> tuple[spaces.Space, spaces.Dict]:
    config = batch.gen_config
    hidden = batch.core.hidden_size if config.observation_mode == "hidden" else 0
    base = observation_space(config, batch.core.vocab_size, hidden)
    parts = dict(base.spaces) if isinstance(base, spaces.Dict) else {"hidden": base}
    parts["feedback"] = spaces.Box(-1e6, 1e6, shape=(len(FEEDBACK_FIELDS),), dtype=np.float32)
    return action_space(config, batch.core.vocab_size), spaces.Dict(parts)


def _observation(batch: DialogueBatch, slots: slice | int = slice(None)) -> dict[str, np.ndarray]:
    base = batch.core.observation(slots)
    out = dict(base) if isinstance(base, dict) else {"hidden": base}
    out["feedback"] = batch.feedback()[slots]
    return out


@document_arguments(dialogue_arguments_table())
class TextDialogueEnv(gym.Env):
    """A conversation: the LM writes each reply token by token, a user answers and rates it.

    ## Description
    An episode is a conversation of up to ``max_turns`` assistant replies in a scenario (``scenarios``: a customer
    asking for a refund, a student asking for an explanation, a person who wants a short answer, ...). The user
    opens; the agent writes the reply one token per step (the actions, KV cache, modes and rewards of TextGen-v0);
    when the reply ends (EOS, a stop string or ``max_reply_tokens``) the user answers with a message and a rating,
    both appended to the state; the next step continues with the next reply.

    ## Action Space
    As TextGen-v0: ``Discrete(len(tokenizer))`` token ids (``action_mode="vocab"``) or ``Discrete(top_k)``.

    ## Observation Space
    ``Dict`` with TextGen-v0's ``input_ids``/``attention_mask`` (left-padded; the conversation so far, user turns
    included, rendered with the chat template, plus the reply so far) or ``hidden``, and ``feedback``:
    ``Box(float32, (4,))`` = (last rating, mean rating so far, turns done / max_turns, reply tokens left fraction).

    ## Rewards
    Every step pays the package reward of the reply (``reward``, sparse or dense as in TextGen-v0; none by default)
    and the KL term when ``kl_coef > 0``. A reply's last token also gets ``feedback_weight * rating`` (with
    ``feedback_mode="dense"`` that rating is paid as it builds up, token by token, summing to the same); the
    conversation's last step also gets ``final_weight * mean rating``. The return is the sum of all: the weighted
    ratings of every reply plus the package rewards. ``info["reward_components"]`` splits each step's reward.

    ## Starting State
    A scenario drawn with the env's seeded generator, the user's opening message, an empty reply.

    ## Episode End
    ``terminated`` when the user ends the conversation (content: rating >= the scenario's ``satisfied_at``) or after
    ``max_turns`` replies. ``info["conversation"]`` is the list of ``{"role", "content"}`` messages.

    ## Arguments
    All keyword-only (``gym.make`` and ``gym.make_vec`` forward them); the table is generated from `DialogueConfig`'s
    field docstrings.

    {arguments}

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["human", "ansi"], "render_fps": 4}

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("render_mode") not in (None, "human", "ansi"):
            raise ValueError(f"Expected render_mode to be one of ['human', 'ansi'], got {kwargs['render_mode']!r}")
        self.render_mode = kwargs.pop("render_mode", None)
        self.dialogue, env_kwargs = _split(kwargs)
        self.batch = DialogueBatch(self.dialogue, env_kwargs, num_slots=1)
        self.tokenizer = self.batch.tokenizer
        self.action_space, self.observation_space = _spaces(self.batch)

    @property
    def config(self):
        """The reply settings (a `TextGenConfig`: modes, lengths, reward) of every reply."""
        return self.batch.gen_config

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        if options:
            raise ValueError(f"Expected no reset options for TextDialogueEnv, got {sorted(options)}")
        infos = self.batch.reset(np.ones(1, dtype=bool), [self.np_random])
        return _observation(self.batch, 0), infos[0]

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if not self.batch.started:
            raise gym.error.ResetNeeded("Cannot call TextDialogueEnv.step before TextDialogueEnv.reset")
        if self.batch.done[0]:
            raise gym.error.ResetNeeded("Cannot call TextDialogueEnv.step after the conversation ended; call reset")
        array = np.asarray(action)
        if array.size != 1 or array.dtype.kind not in "iu":
            raise TypeError(f"Expected action to be an int, got {type(action).__name__} {action!r}")
        step = self.batch.step(array.reshape(1), [self.np_random], np.zeros(1, dtype=bool))
        if self.render_mode == "human":
            self.render()
        return _observation(self.batch, 0), float(step.rewards[0]), bool(step.terminated[0]), False, step.infos[0]

    def render(self) -> str | None:
        text = self.batch.render_text(0)
        if self.render_mode == "ansi":
            return text
        if self.render_mode == "human":
            print(text)
        return None


class TextDialogueVectorEnv(VectorEnv):
    """N conversations stepped as one batch (``gym.make_vec("TextDialogue-v0", num_envs=N)``), one KV-cached forward
    for all slots when the env runs its model; slot i is seeded with ``seed + i``; NEXT_STEP autoreset."""

    metadata = {"render_modes": ["ansi"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"Expected num_envs to be an int >= 1, got {num_envs!r}")
        self.render_mode = kwargs.pop("render_mode", None)
        self.num_envs = num_envs
        self.dialogue, env_kwargs = _split(kwargs)
        self.batch = DialogueBatch(self.dialogue, env_kwargs, num_slots=num_envs)
        self.tokenizer = self.batch.tokenizer
        self.single_action_space, self.single_observation_space = _spaces(self.batch)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._rngs = [seeding.np_random()[0] for _ in range(num_envs)]
        self._autoreset = np.zeros(num_envs, dtype=bool)

    @property
    def config(self):
        """The reply settings (a `TextGenConfig`: modes, lengths, reward) shared by every slot."""
        return self.batch.gen_config

    @property
    def model(self) -> Any:
        """The env's own model (the simulated user's, and the reference of the KL term); loaded on first access."""
        return self.batch.core.model

    @property
    def loaded_model(self) -> Any:
        """The env's own model if it is already in memory, else None (never loads it)."""
        return self.batch.loaded_model

    def conversation(self, slot: int) -> ConversationState:
        """What slot `slot`'s current (or just ended) conversation holds: scenario, messages, ratings, replies."""
        if isinstance(slot, bool) or not isinstance(slot, (int, np.integer)) or not 0 <= slot < self.num_envs:
            raise ValueError(f"Expected slot to be an int in [0, {self.num_envs}), got {slot!r}")
        scenario = self.batch.scenarios[slot]
        return ConversationState(
            scenario=scenario.name if scenario is not None else None,
            messages=tuple(dict(m) for m in self.batch.conversations[slot]),
            ratings=tuple(float(r) for r in self.batch.feedbacks[slot]),
            replies=int(self.batch.turns[slot]),
        )

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        if options:
            raise ValueError(f"Expected no reset options for TextDialogueVectorEnv, got {sorted(options)}")
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"Expected {self.num_envs} seeds (one per env), got {len(seeds)}")
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
        infos = self.batch.reset(np.ones(self.num_envs, dtype=bool), self._rngs)
        self._autoreset[:] = False
        return _observation(self.batch), self._merge(infos)

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self.batch.started:
            raise gym.error.ResetNeeded("Cannot call TextDialogueVectorEnv.step before reset")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"Expected actions of shape ({self.num_envs},), got {actions.shape}")
        restarting = self._autoreset.copy()
        if restarting.any():
            self.batch.reset(restarting, self._rngs)
        if restarting.all():
            rewards, terminated = np.zeros(self.num_envs), np.zeros(self.num_envs, dtype=bool)
            infos = [self.batch.info(i) for i in range(self.num_envs)]
        else:
            step = self.batch.step(actions, self._rngs, idle=restarting)
            rewards, terminated, infos = step.rewards, step.terminated, step.infos
            rewards[restarting], terminated[restarting] = 0.0, False
        self._autoreset = terminated.copy()
        truncated = np.zeros(self.num_envs, dtype=bool)
        return _observation(self.batch), rewards, terminated, truncated, self._merge(infos)

    def step_unfinished(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """`step` without autoreset: conversations that ended stay ended (action ignored, reward 0) until `reset`
        (for agents that collect one conversation per slot)."""
        if not self.batch.started or self.batch.done.all():
            raise gym.error.ResetNeeded("Expected an unfinished conversation to step, got none: call reset")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"Expected actions of shape ({self.num_envs},), got {actions.shape}")
        idle = self.batch.done.copy()
        step = self.batch.step(actions, self._rngs, idle=idle)
        step.rewards[idle] = 0.0
        self._autoreset = idle | step.terminated
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos = self._merge([{} if idle[i] else step.infos[i] for i in range(self.num_envs)])
        return _observation(self.batch), step.rewards, step.terminated, truncated, infos

    def render(self) -> tuple[str, ...] | None:
        return tuple(self.batch.render_text(i) for i in range(self.num_envs)) if self.render_mode == "ansi" else None

    def _merge(self, infos: list[dict[str, Any]]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for i, info in enumerate(infos):
            merged = self._add_info(merged, info, i)
        return merged
