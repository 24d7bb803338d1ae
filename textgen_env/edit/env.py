"""`TextEditEnv`: revising a draft edit by edit (delete, insert, replace, swap, move, rewrite, split, merge)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded

from textgen_env.config_docs import argument_table, document_arguments
from textgen_env.edit.config import TextEditConfig
from textgen_env.edit.episodes import EditBatch
from textgen_env.edit.spaces import edit_action_space, edit_observation_space

__all__ = ["EDIT_RESET_OPTIONS", "TextEditEnv", "checked_action", "draft_option"]

EDIT_RESET_OPTIONS = ("draft",)


@document_arguments(argument_table(TextEditConfig))
class TextEditEnv(gym.Env):
    """Editing as an episode: the state is a draft being revised, an action is one edit of its structure.

    ## Description
    Each episode starts from a draft (drawn from `drafts`, given with ``reset(options={"draft": ...})``, or written by
    the env's LM from a drawn prompt with ``draft_source="generate"``). Every step applies one edit over words,
    phrases or sentences: delete a span, insert text, replace a span, swap or move two spans, rewrite a sentence,
    split a sentence or merge two. The text of inserts, replaces and rewrites comes from the env's LM (prompted with
    the text before the gap, sampled with the env's seeded generator); a cheap enumerator chooses the spans.

    ## Action Space
    * ``action_mode="candidates"`` (default): ``Discrete(num_candidates + 1)``. Action 0 is STOP, action i the
      i-th of the K distinct edits the env proposes this step (shown in the observation and ``info``).
      ``action_masks()`` is True for STOP and the proposed edits (fewer than K when the text allows fewer).
    * ``action_mode="structured"``: ``MultiDiscrete([9, max_words, max_words])`` = (op, a, b) with ops
      ``stop, delete, insert, replace, swap, move, rewrite, split, merge``: delete / replace words a..b; insert
      after word a; swap words a and b; move word a after word b; rewrite the sentence of word a; split after word
      a; merge the sentence of word a with the next. ``action_masks()`` gives per-dimension masks (op, a, b
      concatenated, for MaskablePPO); combinations they cannot exclude (a > b) are invalid.
    An invalid action (a masked candidate, an impossible structured edit) changes nothing, counts as an edit and
    pays ``-invalid_penalty`` with ``info["invalid_action"]`` saying why; ``invalid_action="raise"`` raises instead.

    ## Observation Space
    ``Dict`` with ``text_ids`` / ``text_mask`` (``Box(int64)`` / ``Box(int8)``, ``(max_text_tokens,)``,
    left-padded) and ``edits_left`` (``Discrete(max_edits + 1)``). In 'candidates' mode also, for row 0 = STOP
    (the text itself) and row i = candidate i: ``candidate_ids`` / ``candidate_mask`` (each result's tokens,
    ``(K + 1, max_text_tokens)``), ``candidate_ops`` (op ids), ``candidate_valid`` (the action mask) and
    ``candidate_word_change`` (words added or removed). In 'structured' mode ``word_mask`` marks the words there are.

    ## Rewards
    phi(text) = the reward's score + ``drift_coef * (cos(text, draft) - 1)`` (MiniLM) + ``fluency_coef *`` (mean
    token log-prob under the env's LM). ``reward_mode="dense"`` pays phi(text_t) - phi(text_{t-1}) -
    ``edit_cost`` per edit (an episode sums to phi(final) - phi(draft) minus the costs); ``"sparse"`` pays
    phi(final) at the end (a human reward asks once, at STOP). ``info["reward_components"]`` splits each reward.

    ## Starting State
    The draft, cut to ``max_words`` words and ``max_text_tokens`` tokens (with a warning), and K candidates.

    ## Episode End
    Terminated at STOP (``info["stop_reason"] == "stop"``) or after ``max_edits`` edits (``"max_edits"``, a
    horizon the observation shows through ``edits_left``).

    ## Arguments
    All keyword-only (``gym.make`` and ``gym.make_vec`` forward them); the table is generated from `TextEditConfig`'s
    field docstrings.

    {arguments}

    ``info`` holds ``draft``, ``text``, ``candidates`` (K + 1 descriptions) and ``candidate_texts``, and after a
    step ``edit``, ``edits``, ``reward_components``; at the end ``stop_reason`` and ``episode_return``.

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["human", "ansi"], "render_fps": 1}

    def __init__(self, **kwargs: Any) -> None:
        self.config = TextEditConfig(**kwargs)
        self.render_mode = self.config.render_mode
        self.batch = EditBatch(self.config, num_slots=1)
        self.tokenizer = self.batch.tokenizer
        self.model = self.batch.model
        self.reward = self.batch.reward
        self.action_space = edit_action_space(self.config)
        self.observation_space = edit_observation_space(self.config, self.batch.vocab_size)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        draft = draft_option(options)
        super().reset(seed=seed)
        step = self.batch.restart([0], [self.np_random], [draft])
        if self.render_mode == "human":
            self.render()
        return self.batch.observation(0), step.infos[0]

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if not self.batch.started:
            raise ResetNeeded("Cannot call TextEditEnv.step before TextEditEnv.reset")
        if self.batch.done[0]:
            raise ResetNeeded("Cannot call TextEditEnv.step after the episode ended; call TextEditEnv.reset first")
        actions = checked_action(self.action_space, action)[None]
        step = self.batch.step([0], actions, [self.np_random])
        if self.render_mode == "human":
            self.render()
        return self.batch.observation(0), float(step.rewards[0]), bool(step.terminated[0]), False, step.infos[0]

    def action_masks(self) -> np.ndarray:
        """The allowed actions (see Action Space), for sb3-contrib's MaskablePPO."""
        return self.batch.action_masks()[0]

    def render(self) -> str | None:
        if self.render_mode is None:
            gym.logger.warn("Calling render without a render_mode; pass render_mode='ansi' or 'human' to TextEdit-v0")
            return None
        text = self.batch.render_text(0)
        if self.render_mode == "human":
            print(text)
            return None
        return text


def draft_option(options: Mapping[str, Any] | None) -> str | None:
    """The draft that ``reset(options=options)`` starts from, or None to draw one."""
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise TypeError(f"Expected options to be a dict or None, got {type(options).__name__}")
    unknown = sorted(str(key) for key in options if key not in EDIT_RESET_OPTIONS)
    if unknown:
        raise ValueError(f"Expected options keys among {list(EDIT_RESET_OPTIONS)}, got unknown key(s) {unknown}")
    draft = options.get("draft")
    if draft is not None and not isinstance(draft, str):
        raise TypeError(f"Expected options['draft'] to be a str, got {type(draft).__name__} {draft!r}")
    return draft


def checked_action(space: gym.Space, action: Any) -> np.ndarray:
    """`action` as an int64 array of the space's shape, or a ValueError / TypeError naming what was wrong."""
    array = np.asarray(action)
    if array.dtype.kind == "f" and np.all(np.mod(array, 1) == 0):
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"Expected an integer action, got {array.dtype} {array.tolist()!r}")
    if array.shape != space.shape and not (space.shape == () and array.shape == (1,)):
        raise ValueError(f"Expected an action of shape {space.shape}, got shape {array.shape}")
    array = array.reshape(space.shape).astype(np.int64)
    if not space.contains(array if space.shape else np.int64(array)):
        raise ValueError(f"Expected an action in {space}, got {array.tolist()!r}")
    return array
