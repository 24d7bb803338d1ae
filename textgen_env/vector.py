"""`TextGenVectorEnv`: N text-generation episodes stepped as one batch, sharing one tokenizer, model and reward."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from textgen_env.config import TextGenConfig
from textgen_env.episodes import EpisodeBatch
from textgen_env.reset_options import vector_env_options
from textgen_env.spaces import action_space, observation_space

__all__ = ["TextGenVectorEnv"]


class TextGenVectorEnv(VectorEnv):
    """N `TextGenEnv` episodes in one process, stepped together (``gym.make_vec("TextGen-v0", num_envs=N)``).

    Everything is batched: one reward call per step for all slots and, when the env runs its model, one KV-cached
    single-token forward for all slots. Slot i uses its own generator, seeded with ``seed + i`` by
    ``reset(seed=seed)``, so the results equal N single `TextGenEnv` reset with seeds ``seed, seed + 1, ...``.
    Autoreset follows Gymnasium 1.x's NEXT_STEP mode: the step after an episode ends resets that slot (its action
    is ignored, its reward is 0). Arguments are those of `TextGenEnv`, plus `num_envs`.

    Reset options, as in Gymnasium's ``SyncVectorEnv``: ``options={"reset_mask": mask}`` (a bool array of shape
    ``(num_envs,)``) resets only the masked slots, with their seeds (``seed + i`` for slot i); the other slots keep
    their episode exactly (tokens, returns, reward state, model outputs), the observation shows all slots and the
    infos only the reset ones. ``options={"prompt": "text"}`` starts every reset slot from that prompt,
    ``options={"prompt": [p0, p1, ...]}`` gives one per slot (None draws one; entries of slots not reset are ignored).
    """

    metadata = {
        "render_modes": ["human", "ansi", "rgb_array"],
        "render_fps": 4,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"Expected num_envs to be an int >= 1, got {num_envs!r}")
        self.config = TextGenConfig(**kwargs)
        self.num_envs = num_envs
        self.render_mode = self.config.render_mode
        self.batch = EpisodeBatch(self.config, num_slots=num_envs)
        self.tokenizer = self.batch.tokenizer
        self.reward = self.batch.reward
        self.single_action_space = action_space(self.config, self.batch.vocab_size)
        hidden = self.batch.hidden_size if self.config.observation_mode == "hidden" else 0
        self.single_observation_space = observation_space(self.config, self.batch.vocab_size, hidden)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._slot_rngs: list[np.random.Generator] = [seeding.np_random()[0] for _ in range(num_envs)]
        self._autoreset = np.zeros(num_envs, dtype=bool)

    @property
    def model(self) -> Any:
        """The env's own model (loaded on first access in modes that do not need it)."""
        return self.batch.model

    @property
    def loaded_model(self) -> Any:
        """The env's own model if it is already in memory, else None (never loads it).

        An agent uses it as its frozen KL reference when it is there, instead of holding a second copy.
        """
        return self.batch.loaded_model

    @property
    def task(self) -> Any:
        """The env's `Task` (``task=``), or None."""
        return self.batch.task.task if self.batch.task is not None else None

    def task_prompt(self, item: Any) -> str:
        """The prompt text of a task item as this env renders it (chat template or plain transcript)."""
        return self.batch.task_prompt(item)

    def task_log(self) -> dict[str, float]:
        """Namespaced task values for a training log (``task/difficulty``, ...); {} without a task."""
        return self.batch.task_log()

    def encode_prompt(self, text: str) -> list[int]:
        """The token ids an episode started from `text` begins with (the env's tokenization and prompt trimming)."""
        return self.batch.prompt_token_ids(text)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        mask, prompts = vector_env_options(options, self.num_envs)
        if not self.batch.started and not mask.all():
            raise gym.error.ResetNeeded(
                f"Expected a reset of every slot before a partial one, got options['reset_mask']={mask.tolist()}"
            )
        if isinstance(seed, int):
            seeds: list[int | None] = [seed + i for i in range(self.num_envs)]
        elif seed is None:
            seeds = [None] * self.num_envs
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"Expected {self.num_envs} seeds (one per env), got {len(seeds)}")
        if seeds[0] is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seeds[0])
        for i in np.flatnonzero(mask):
            if seeds[i] is not None:
                self._slot_rngs[i] = seeding.np_random(seeds[i])[0]
        step = self.batch.advance(None, mask, self._slot_rngs, idle=~mask, prompts=prompts)
        self._autoreset[mask] = False
        return self.batch.observation(), self._merge_infos(step.infos, rows=mask)

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = self._checked_actions(actions)
        step = self.batch.advance(actions, self._autoreset.copy(), self._slot_rngs)
        self._autoreset = step.terminated | step.truncated
        return self._transition(step)

    def step_unfinished(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """`step` without autoreset: slots whose episode has ended stay ended (their action is ignored, reward 0,
        terminated and truncated False, nothing is scored) until the next `reset`.

        For agents that collect one episode per slot and then reset every slot: no slot starts an episode that would
        be scored (a question to a person, with the ``human`` reward) and then thrown away.
        """
        actions = self._checked_actions(actions)
        finished = self._autoreset.copy()
        if finished.all():
            raise gym.error.ResetNeeded("Expected an unfinished slot to step, got none: call reset")
        step = self.batch.advance(actions, np.zeros(self.num_envs, dtype=bool), self._slot_rngs, idle=finished)
        self._autoreset = finished | step.terminated | step.truncated
        return self._transition(step)

    def _checked_actions(self, actions: Any) -> np.ndarray:
        if not self.batch.started:
            raise gym.error.ResetNeeded("Cannot call TextGenVectorEnv.step before TextGenVectorEnv.reset")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"Expected actions of shape ({self.num_envs},), got {actions.shape}")
        return actions

    def _transition(self, step: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """The 5-tuple of a step: observations, rewards, terminated, truncated and the merged infos."""
        infos = self._merge_infos(step.infos)
        return self.batch.observation(), step.rewards.copy(), step.terminated, step.truncated, infos

    def set_kl_coef(self, value: float) -> None:
        """Set the coefficient of the KL term (for adaptive KL control); the env must be built with kl_coef > 0."""
        self.batch.set_kl_coef(value)

    def action_masks(self) -> np.ndarray:
        """(num_envs, n_actions) bool: the allowed actions of each slot (for MaskablePPO)."""
        return self.batch.action_masks()

    def render(self) -> tuple[str, ...] | tuple[np.ndarray, ...] | None:
        if self.render_mode == "rgb_array":
            return tuple(self.batch.render_rgb(i) for i in range(self.num_envs))
        texts = tuple(self.batch.render_text(i) for i in range(self.num_envs))
        if self.render_mode == "ansi":
            return texts
        if self.render_mode == "human":
            print("\n".join(texts))
        return None

    def _merge_infos(self, infos: list[dict[str, Any]], rows: np.ndarray | None = None) -> dict[str, Any]:
        """Gymnasium's batched infos (each key with its ``_key`` mask) of all slots, or of the `rows` mask's."""
        merged: dict[str, Any] = {}
        for i, info in enumerate(infos):
            if rows is None or rows[i]:
                merged = self._add_info(merged, info, i)
        return merged
