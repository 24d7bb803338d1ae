"""`TextGenConfig`: every argument of TextGenEnv and its vector env, typed, documented and validated in one place."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from textgen_env.generation import StopRules
from textgen_env.prompts import PromptSpec
from textgen_env.rewards import RewardSpec
from textgen_env.rewards.shaping import REWARD_MODES
from textgen_env.validation import check_choice, check_int, torch_dtype

__all__ = ["ACTION_MODES", "OBSERVATION_MODES", "RENDER_MODES", "TextGenConfig"]

ACTION_MODES = ("vocab", "top_k")
OBSERVATION_MODES = ("tokens", "hidden")
RENDER_MODES = ("human", "ansi", "rgb_array")


@dataclass(frozen=True)
class TextGenConfig:
    """The settings of a TextGenEnv (all keyword arguments of the env; `gym.make` forwards them)."""

    model: str | os.PathLike[str] | PreTrainedModel | None = None
    """Hugging Face model name, local folder or model instance; None means the embedded SmolLM2-135M-Instruct."""
    tokenizer: PreTrainedTokenizerBase | str | os.PathLike[str] | None = None
    """The tokenizer, or where to load it from; None loads the model's own."""
    prompts: PromptSpec = "movie_reviews"
    """List of str, .txt/.jsonl path, callable f(np_random) -> str, or built-in set name ('movie_reviews:eval')."""
    max_new_tokens: int = 32
    """Most tokens generated per episode; the episode ends when it is reached (>= 2)."""
    max_prompt_tokens: int = 64
    """Longest prompt in tokens; longer prompts lose their start (left truncation) with a warning."""
    stop_strings: Sequence[str] = ()
    """The episode ends once the completion contains any of these strings."""
    stop_on_eos: bool = True
    """End the episode when the EOS token is chosen."""
    reward: RewardSpec = "length"
    """Registered reward name, callable (prompt, completion, done) -> float, Reward, or {reward: weight} dict."""
    reward_kwargs: Mapping[str, Any] | None = None
    """Constructor arguments for a named reward (for a dict spec: name -> its own kwargs)."""
    reward_mode: Literal["sparse", "dense"] = "sparse"
    """'sparse': score at episode end; 'dense': potential-based r_t = f(text_t) - f(text_{t-1})."""
    action_mode: Literal["vocab", "top_k"] = "vocab"
    """'vocab': action = token id; 'top_k': action i = the i-th most likely next token under the env's model."""
    top_k: int = 10
    """Number of candidate tokens in 'top_k' action mode."""
    mask_top_k: int | None = None
    """In 'vocab' mode, action_masks() allows only the env model's top-k tokens (None: no top-k limit)."""
    mask_top_p: float | None = None
    """In 'vocab' mode, action_masks() allows only the env model's nucleus of mass top_p (None: no limit)."""
    observation_mode: Literal["tokens", "hidden"] = "tokens"
    """'tokens': Dict of left-padded input_ids/attention_mask; 'hidden': the env model's last hidden state."""
    render_mode: Literal["human", "ansi", "rgb_array"] | None = None
    """'human' prints prompt, completion and reward; 'ansi' returns them as a string; 'rgb_array' returns them drawn
    as a fixed-size (384, 640, 3) uint8 picture, the newest token highlighted (for video recorders)."""
    kl_coef: float = 0.0
    """> 0 adds kl_coef * log pi_ref(a_t | s_t) to every step's reward, pi_ref being the env's frozen model. On its
    own that is a bonus for text the reference finds likely, not a KL penalty: for a KL penalty with stock SB3 use
    ``reference_logprobs=True`` with ``agents.sb3.KLPenaltyCallback`` (see the README's KL section). Can be changed
    later with ``env.set_kl_coef``."""
    reference_logprobs: bool = False
    """True reports log pi_ref(a_t | s_t) of the env's frozen model in ``info["reference_logprob"]`` at every step
    without changing the reward, for learners that apply the KL penalty themselves (kl_coef > 0 reports it too)."""
    device: str | torch.device = "cpu"
    """Device for the env's own model work (top-k candidates, hidden observations, masks)."""
    dtype: str | torch.dtype = "float32"
    """Dtype of the env's model when the env loads it."""

    def __post_init__(self) -> None:
        check_int("max_new_tokens", self.max_new_tokens, 2)
        check_int("max_prompt_tokens", self.max_prompt_tokens, 1)
        check_choice("reward_mode", self.reward_mode, REWARD_MODES)
        check_choice("action_mode", self.action_mode, ACTION_MODES)
        check_choice("observation_mode", self.observation_mode, OBSERVATION_MODES)
        if self.render_mode is not None:
            check_choice("render_mode", self.render_mode, RENDER_MODES)
        check_int("top_k", self.top_k, 1)
        if self.mask_top_k is not None:
            check_int("mask_top_k", self.mask_top_k, 1)
        if self.mask_top_p is not None and not (
            isinstance(self.mask_top_p, numbers.Real) and 0.0 < self.mask_top_p <= 1.0
        ):
            raise ValueError(f"Expected mask_top_p to be a float in (0, 1], got {self.mask_top_p!r}")
        if isinstance(self.kl_coef, bool) or not isinstance(self.kl_coef, numbers.Real) or not self.kl_coef >= 0:
            raise ValueError(f"Expected kl_coef to be a finite number >= 0, got {self.kl_coef!r}")
        if not math.isfinite(self.kl_coef):
            raise ValueError(f"Expected kl_coef to be a finite number >= 0, got {self.kl_coef!r}")
        if not isinstance(self.reference_logprobs, bool):
            raise ValueError(f"Expected reference_logprobs to be a bool, got {self.reference_logprobs!r}")
        if isinstance(self.stop_strings, str):
            object.__setattr__(self, "stop_strings", (self.stop_strings,))
        if any(not isinstance(s, str) or not s for s in self.stop_strings):
            raise ValueError(f"Expected stop_strings to be non-empty strings, got {self.stop_strings!r}")
        object.__setattr__(self, "stop_strings", tuple(self.stop_strings))
        if isinstance(self.dtype, str):
            object.__setattr__(self, "dtype", torch_dtype("dtype", self.dtype))

    @property
    def needs_model(self) -> bool:
        """Whether the env itself runs the model at every step (candidates, hidden features or masks)."""
        return (
            self.action_mode == "top_k"
            or self.observation_mode == "hidden"
            or self.mask_top_k is not None
            or self.mask_top_p is not None
            or self.uses_reference
        )

    @property
    def uses_kl(self) -> bool:
        """Whether the env adds the KL term (reference log-probs) to its rewards."""
        return self.kl_coef > 0

    @property
    def uses_reference(self) -> bool:
        """Whether the env computes the reference log-prob of every action (for its reward or its info)."""
        return self.uses_kl or self.reference_logprobs

    @property
    def sequence_length(self) -> int:
        """Length of the token observation: max_prompt_tokens + max_new_tokens."""
        return self.max_prompt_tokens + self.max_new_tokens

    def stop_rules(self, eos_token_id: int | None) -> StopRules:
        """The rules that end a completion (`stop_on_eos` with the tokenizer's `eos_token_id`, `stop_strings`,
        `max_new_tokens`): the env's episodes apply them, and so does the evaluation's sampling."""
        return StopRules(
            max_new_tokens=self.max_new_tokens,
            eos_token_id=eos_token_id if self.stop_on_eos else None,
            stop_strings=tuple(self.stop_strings),
        )
