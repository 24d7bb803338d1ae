"""`TextGenEnv`: language-model text generation as a Gymnasium environment."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded

from textgen_env.config import TextGenConfig
from textgen_env.config_docs import argument_table, document_arguments
from textgen_env.episodes import EpisodeBatch
from textgen_env.reset_options import single_env_options
from textgen_env.spaces import action_space, observation_space

__all__ = ["TextGenEnv"]


@document_arguments(argument_table(TextGenConfig))
class TextGenEnv(gym.Env):
    """Text generation as an episode: the state is the text so far, an action picks the next token.

    ## Description
    Each episode starts from a prompt drawn from `prompts` with the env's seeded generator. Every step appends one
    token to the completion. The reward scores the completion (any built-in or user reward, or a weighted mix).
    The env never trains anything: any agent that speaks Gymnasium (ours in `agents/`, stable-baselines3, your own)
    chooses the tokens.

    ## Action Space
    * ``action_mode="vocab"`` (default): ``Discrete(len(tokenizer))``, the action is the token id. `action_masks()`
      returns the env model's top-k / top-p tokens (``mask_top_k``, ``mask_top_p``) for sb3-contrib's MaskablePPO.
    * ``action_mode="top_k"``: ``Discrete(top_k)``, action i is the i-th most likely next token under the env's
      model (computed with its KV cache, one cached token forward per step).

    ## Observation Space
    * ``observation_mode="tokens"`` (default): ``Dict(input_ids=Box(int64, (L,)), attention_mask=Box(int8, (L,)))``
      with ``L = max_prompt_tokens + max_new_tokens``, **left-padded** with the pad id, so the newest token is
      always last; ``attention_mask`` is 1 on prompt and completion tokens.
    * ``observation_mode="hidden"``: ``Box(float32, (hidden_size,))``, the env model's last-layer hidden state at
      the newest token, a meaningful feature vector for stable-baselines3's ``MlpPolicy``.
    The decoded prompt and completion are in ``info``, never in the observation.

    ## Rewards
    ``reward_mode="sparse"`` (default) pays the reward's score of the final completion at the last step.
    ``reward_mode="dense"`` pays r_t = f(text_t) - f(text_{t-1}) (potential-based, f(text_0) = 0), which sums to
    the sparse score. With ``kl_coef > 0`` every step also gets ``kl_coef * log pi_ref(a_t | s_t)`` under the env's
    own model. ``info["reward_components"]`` holds each component's share of this step's reward (``"kl"`` for that).

    ## Starting State
    A prompt from `prompts` (left-truncated to ``max_prompt_tokens``) and an empty completion.
    ``reset(options={"prompt": "text"})`` starts from that prompt instead of drawing one (it has no references);
    other option keys raise ``ValueError``.

    ## Episode End
    The episode terminates when the EOS token is chosen (``stop_on_eos``), the completion contains one of
    ``stop_strings``, or ``max_new_tokens`` tokens were generated (a fixed horizon that the observation shows, so it
    is part of the task: ``terminated``, not ``truncated``). ``info["stop_reason"]`` says which.

    ## Arguments
    All keyword-only (``gym.make`` and ``gym.make_vec`` forward them); the table is generated from `TextGenConfig`'s
    field docstrings.

    {arguments}

    ``reset`` options: ``"prompt"`` (a str to start from); `TextGenVectorEnv` also takes ``"reset_mask"``.

    ``info`` holds ``prompt`` and ``text`` (completion so far); after a reset ``prompt_tokens``; after a step
    ``token`` (the chosen token's text), ``reward_components``, ``reference_logprob`` (with ``kl_coef > 0`` or
    ``reference_logprobs``), and at the end ``stop_reason`` and ``episode_return``. With ``tools``: ``tool_call`` and
    ``env_tokens`` (the result's ids, inserted after the action: env tokens, never actions) at the step that closed
    a call, and ``tool_calls`` with the counts at the end (see ``docs/tools.md``).

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["human", "ansi", "rgb_array"], "render_fps": 4}

    def __init__(self, **kwargs: Any) -> None:
        self.config = TextGenConfig(**kwargs)
        self.render_mode = self.config.render_mode
        self.batch = EpisodeBatch(self.config, num_slots=1)
        self.tokenizer = self.batch.tokenizer
        self.reward = self.batch.reward
        self.prompt_source = self.batch.prompt_source
        self.action_space = action_space(self.config, self.batch.vocab_size)
        hidden = self.batch.hidden_size if self.config.observation_mode == "hidden" else 0
        self.observation_space = observation_space(self.config, self.batch.vocab_size, hidden)

    @property
    def model(self) -> Any:
        """The env's own model (loaded on first access in modes that do not need it)."""
        return self.batch.model

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

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        prompt = single_env_options(options)
        super().reset(seed=seed)
        step = self.batch.advance(None, np.ones(1, dtype=bool), [self.np_random], prompts=[prompt])
        if self.render_mode == "human":
            self.render()
        return self.batch.observation(0), step.infos[0]

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if not self.batch.started:
            raise ResetNeeded("Cannot call TextGenEnv.step before TextGenEnv.reset")
        if self.batch.done[0]:
            raise ResetNeeded("Cannot call TextGenEnv.step after the episode ended; call TextGenEnv.reset first")
        action_array = _scalar_action(action)
        step = self.batch.advance(action_array, np.zeros(1, dtype=bool), [None])
        if self.render_mode == "human":
            self.render()
        return (
            self.batch.observation(0),
            float(step.rewards[0]),
            bool(step.terminated[0]),
            bool(step.truncated[0]),
            step.infos[0],
        )

    def set_kl_coef(self, value: float) -> None:
        """Set the coefficient of the KL term (for adaptive KL control); the env must be built with kl_coef > 0."""
        self.batch.set_kl_coef(value)

    def action_masks(self) -> np.ndarray:
        """Allowed actions as a bool array of the action space's size (for MaskablePPO)."""
        return self.batch.action_masks()[0]

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn(
                "Calling render without a render_mode; pass render_mode='human', 'ansi' or 'rgb_array' to TextGenEnv"
            )
            return None
        if self.render_mode == "rgb_array":
            return self.batch.render_rgb(0)
        text = self.batch.render_text(0)
        if self.render_mode == "ansi":
            return text
        print(text)
        return None


def _scalar_action(action: Any) -> np.ndarray:
    array = np.asarray(action)
    if array.size != 1 or array.dtype.kind not in "iuf" or isinstance(action, (bool, np.bool_)):
        raise TypeError(f"Expected action to be an int, got {type(action).__name__} {action!r}")
    return array.reshape(1)
