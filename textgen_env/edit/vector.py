"""`TextEditVectorEnv`: N edit episodes stepped as one batch, sharing one tokenizer, LM, proposer and reward."""

from __future__ import annotations

from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from textgen_env.edit.config import TextEditConfig
from textgen_env.edit.env import checked_action, draft_option
from textgen_env.edit.episodes import EditBatch
from textgen_env.edit.spaces import edit_action_space, edit_observation_space

__all__ = ["TextEditVectorEnv"]


class TextEditVectorEnv(VectorEnv):
    """N `TextEditEnv` episodes in one process (``gym.make_vec("TextEdit-v0", num_envs=N)``).

    Every step samples the LM text of all slots' candidates in one batch (one KV-cached forward per new token) and
    scores all slots' texts in one reward call. Slot i uses its own generator, seeded with ``seed + i``, so the
    results equal N single `TextEditEnv` reset with seeds ``seed, seed + 1, ...``. Autoreset follows Gymnasium
    1.x's NEXT_STEP mode (the step after an episode ends resets that slot; its action is ignored, its reward 0).
    Arguments are those of `TextEditEnv`, plus `num_envs`. ``reset(options={"draft": text})`` starts every slot
    from that draft, ``{"draft": [d0, d1, ...]}`` one per slot (None draws one).
    """

    metadata = {"render_modes": ["human", "ansi"], "render_fps": 1, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"Expected num_envs to be an int >= 1, got {num_envs!r}")
        self.config = TextEditConfig(**kwargs)
        self.num_envs = num_envs
        self.render_mode = self.config.render_mode
        self.batch = EditBatch(self.config, num_slots=num_envs)
        self.tokenizer = self.batch.tokenizer
        self.model = self.batch.model
        self.reward = self.batch.reward
        self.single_action_space = edit_action_space(self.config)
        self.single_observation_space = edit_observation_space(self.config, self.batch.vocab_size)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._slot_rngs = [seeding.np_random()[0] for _ in range(num_envs)]
        self._autoreset = np.zeros(num_envs, dtype=bool)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        drafts = self._drafts(options)
        seeds: list[int | None] | None = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else seed
        if seeds is None:
            seeds = [None] * self.num_envs
        if len(seeds) != self.num_envs:
            raise ValueError(f"Expected {self.num_envs} seeds (one per env), got {len(seeds)}")
        if seeds[0] is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seeds[0])
        for i, value in enumerate(seeds):
            if value is not None:
                self._slot_rngs[i] = seeding.np_random(value)[0]
        step = self.batch.restart(range(self.num_envs), self._slot_rngs, drafts)
        self._autoreset[:] = False
        return self._observations(), self._merge(step.infos)

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self.batch.started:
            raise gym.error.ResetNeeded("Cannot call TextEditVectorEnv.step before TextEditVectorEnv.reset")
        actions = np.asarray(actions)
        if len(actions) != self.num_envs:
            raise ValueError(f"Expected {self.num_envs} actions (one per env), got {len(actions)}")
        checked = np.stack([checked_action(self.single_action_space, a) for a in actions])
        restarting = np.flatnonzero(self._autoreset).tolist()
        stepping = np.flatnonzero(~self._autoreset).tolist()
        step = self.batch.step(stepping, checked, self._slot_rngs)
        if restarting:
            restarted = self.batch.restart(restarting, self._slot_rngs)
            for slot in restarting:
                step.infos[slot] = restarted.infos[slot]
        self._autoreset = step.terminated | step.truncated
        return self._observations(), step.rewards.copy(), step.terminated, step.truncated, self._merge(step.infos)

    def step_unfinished(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """`step` without autoreset: slots whose episode has ended stay ended (their action is ignored, reward 0,
        terminated and truncated False, nothing is proposed or scored) until the next `reset`.

        For agents that collect one episode per slot and then reset every slot: no slot samples candidates and
        scores texts for an episode that would be thrown away.
        """
        if not self.batch.started:
            raise gym.error.ResetNeeded("Cannot call TextEditVectorEnv.step_unfinished before TextEditVectorEnv.reset")
        finished = self._autoreset.copy()
        if finished.all():
            raise gym.error.ResetNeeded("Expected an unfinished slot to step, got none: call reset")
        actions = np.asarray(actions)
        if len(actions) != self.num_envs:
            raise ValueError(f"Expected {self.num_envs} actions (one per env), got {len(actions)}")
        checked = np.stack([checked_action(self.single_action_space, a) for a in actions])
        step = self.batch.step(np.flatnonzero(~finished).tolist(), checked, self._slot_rngs)
        self._autoreset = finished | step.terminated | step.truncated
        return self._observations(), step.rewards.copy(), step.terminated, step.truncated, self._merge(step.infos)

    @property
    def loaded_model(self) -> Any:
        """The LM this env runs (for its candidates' infilling), or None when it runs none."""
        return self.model

    def action_masks(self) -> np.ndarray:
        """(num_envs, n) bool: each slot's allowed actions (for MaskablePPO)."""
        return self.batch.action_masks()

    def render(self) -> tuple[str, ...] | None:
        if self.render_mode is None:
            gym.logger.warn("Calling render without a render_mode; pass render_mode='ansi' or 'human' to TextEdit-v0")
            return None
        texts = tuple(self.batch.render_text(i) for i in range(self.num_envs))
        if self.render_mode == "human":
            print("\n".join(texts))
            return None
        return texts

    def _drafts(self, options: dict[str, Any] | None) -> list[str | None] | None:
        given = options.get("draft") if isinstance(options, dict) else None
        if isinstance(options, dict) and isinstance(given, (list, tuple)):
            draft_option({key: value for key, value in options.items() if key != "draft"})  # checks the other keys
            if len(given) != self.num_envs:
                raise ValueError(f"Expected options['draft'] to hold {self.num_envs} drafts, got {len(given)}")
            return [draft_option({"draft": d}) for d in given]
        return [draft_option(options)] * self.num_envs

    def _observations(self) -> Any:
        out = create_empty_array(self.single_observation_space, n=self.num_envs)
        return concatenate(
            self.single_observation_space,
            [self.batch.observation(i) for i in range(self.num_envs)],
            cast(dict[str, Any], out),  # a Dict space's empty batch is a dict of arrays
        )

    def _merge(self, infos: list[dict[str, Any]]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for i, info in enumerate(infos):
            if info:
                merged = self._add_info(merged, info, i)
        return merged
