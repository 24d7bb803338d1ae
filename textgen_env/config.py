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
from textgen_env.task_source import TASK_SPLITS
from textgen_env.tasks import Task
from textgen_env.tools import CALL_FORMATS, Tool, make_registry
from textgen_env.validation import check_choice, check_int, torch_dtype

__all__ = ["ACTION_MODES", "OBSERVATION_MODES", "RENDER_MODES", "TextGenConfig"]

ACTION_MODES = ("vocab", "top_k")
OBSERVATION_MODES = ("tokens", "hidden")
RENDER_MODES = ("human", "ansi", "rgb_array")


@dataclass(frozen=True)
class TextGenConfig:
    """The settings of a TextGenEnv (all keyword arguments of the env; `gym.make` forwards them)."""

    model: str | os.PathLike[str] | PreTrainedModel | None = None
    """Hugging Face model name, local folder or ``PreTrainedModel``; None means the embedded SmolLM2-135M-Instruct."""
    tokenizer: PreTrainedTokenizerBase | str | os.PathLike[str] | None = None
    """The tokenizer, or where to load it from; None loads the model's own."""
    prompts: PromptSpec = "movie_reviews"
    """A list of str, a ``.txt`` (one prompt per line) or ``.jsonl`` (``prompt``, optional ``references``) path, a
    callable ``f(np_random) -> str``, or a built-in set (``movie_reviews``, ``stories``, ``facts``) with ``:train``
    (the default) or ``:eval``."""
    max_new_tokens: int = 32
    """Most tokens generated per episode (>= 2); the episode ends when it is reached."""
    max_prompt_tokens: int = 64
    """Longest prompt in tokens; a longer prompt keeps its last tokens (left truncation), with a warning."""
    stop_strings: Sequence[str] = ()
    """The episode ends once the completion contains any of these strings."""
    stop_on_eos: bool = True
    """The episode ends when the EOS token is chosen."""
    reward: RewardSpec | None = None
    """Registered reward name, callable ``(prompt, completion, done) -> float``, ``Reward``, or ``{reward: weight}``
    dict (see ``textgen_env.rewards``); None: ``"length"`` without a ``task``, no package reward with one."""
    reward_kwargs: Mapping[str, Any] | None = None
    """Constructor arguments for a named reward (for a dict spec: name -> its own kwargs)."""
    reward_mode: Literal["sparse", "dense"] = "sparse"
    """``"sparse"``: the score of the final completion, at the last step; ``"dense"``: potential-based
    ``r_t = f(text_t) - f(text_{t-1})`` with ``f(text_0) = 0``, which sums to the sparse score."""
    action_mode: Literal["vocab", "top_k"] = "vocab"
    """``"vocab"``: ``Discrete(len(tokenizer))``, the action is the token id; ``"top_k"``: ``Discrete(top_k)``,
    action i is the i-th most likely next token under the env's model."""
    top_k: int = 10
    """Number of candidate tokens in ``"top_k"`` action mode."""
    mask_top_k: int | None = None
    """In ``"vocab"`` mode, ``action_masks()`` allows only the env model's k most likely tokens (for sb3-contrib's
    MaskablePPO; None: no top-k limit; with ``mask_top_p`` too, the tokens both allow)."""
    mask_top_p: float | None = None
    """In ``"vocab"`` mode, ``action_masks()`` allows only the env model's nucleus: its most likely tokens until
    their probability reaches ``mask_top_p`` (None: no limit)."""
    observation_mode: Literal["tokens", "hidden"] = "tokens"
    """``"tokens"``: ``Dict(input_ids=Box(int64), attention_mask=Box(int8))`` of length ``max_prompt_tokens +
    max_new_tokens``, **left-padded**; ``"hidden"``: ``Box(float32, (hidden_size,))``, the env model's last hidden
    state at the newest token."""
    render_mode: Literal["human", "ansi", "rgb_array"] | None = None
    """``"human"`` prints prompt, completion and reward; ``"ansi"`` returns them as a string; ``"rgb_array"`` returns
    them drawn as a (384, 640, 3) uint8 picture, the newest token highlighted (for ``RecordVideo``)."""
    kl_coef: float = 0.0
    """> 0 adds ``kl_coef * log pi_ref(a_t | s_t)`` to every step's reward (component ``"kl"``), pi_ref being the
    env's own model, which it never trains. On its own that is a bonus for text the reference finds likely, not a
    KL penalty: for a KL penalty with stock SB3 use ``reference_logprobs=True`` with
    ``agents.sb3.KLPenaltyCallback`` (the docs' stable-baselines3 page, "KL penalty the SB3 way"). ``set_kl_coef``
    changes it later, on an env built with ``kl_coef > 0``."""
    reference_logprobs: bool = False
    """True reports ``log pi_ref(a_t | s_t)`` of the env's own model in ``info["reference_logprob"]`` at every step
    without changing the reward, for learners that apply the KL penalty themselves (``agents.sb3.KLPenaltyCallback``;
    ``kl_coef > 0`` reports it too)."""
    tools: Sequence[Tool | str] = ()
    """Tools the policy may call inside an episode: built-in names (``"calculator"``, ``"python"``, ``"search"``) or
    ``textgen_env.tools.Tool`` instances. When a call closes in the completion, the env runs it and appends the
    result as env tokens (never actions; ``info["env_tokens"]``), and the episode goes on (see ``docs/tools.md``).
    With a task, the system prompt of each item ends with the tools' description and call format; other prompts are
    the user's to write (``CALL_FORMATS[...].describe(registry)`` gives the paragraph)."""
    tool_format: Literal["auto", "tags", "hermes"] = "auto"
    """How calls and results are written: ``"tags"`` (``<tool_call>{json}</tool_call>``, results in
    ``<tool_result>...</tool_result>``), ``"hermes"`` (results in ``<tool_response>...</tool_response>``), ``"auto"``:
    ``"hermes"`` when the tokenizer's chat template writes ``<tool_call>``, else ``"tags"``."""
    max_tool_calls: int = 4
    """Most tool calls per episode; later calls get an error result."""
    max_tool_result_tokens: int = 64
    """Longest inserted result in tokens, tags included; a longer one is cut with the marker ``…[truncated]``. Inserted
    tokens count toward ``max_new_tokens``."""
    tool_timeout_s: float = 10.0
    """Wall-clock limit of one call: the ``python`` tool's process is killed at it; an in-process tool that takes
    longer gets an error result instead of its output."""
    tool_call_reward: float = 0.0
    """Reward component ``tool_call`` paid at each call (negative: a cost per call; positive: a bonus)."""
    tool_error_reward: float = 0.0
    """Reward component ``tool_error`` paid at each failed or malformed call (usually <= 0)."""
    device: str | torch.device = "cpu"
    """Device of the env's own model work (top-k candidates, hidden observations, masks, reference log-probs); a
    given model instance is moved there when the env runs it."""
    dtype: str | torch.dtype = "float32"
    """Dtype of the env's model when the env loads it (a given instance keeps its own)."""
    task: str | Task | None = None
    """A task with checkable answers: a name from ``textgen_env.tasks.available_tasks()`` (``"arithmetic"``, ...),
    ``"rg:<dataset>"`` or a ``Task``. Its items replace ``prompts`` (rendered with the chat template, the system
    prompt stating the answer format) and its score is paid at the last step (``correct_weight``,
    ``format_weight``), on top of any ``reward`` and the KL term. ``info["task"]`` holds ``name``, ``question``,
    ``answer`` (the reference, a string) and ``difficulty``, and at the end the scores."""
    task_kwargs: Mapping[str, Any] | None = None
    """Constructor arguments of a named task (for example ``{"answer_format": "tag"}``)."""
    difficulty: int | Literal["auto"] | None = None
    """The task's level (one of its ``difficulties``); ``"auto"``: the task library's curriculum moves it to keep the
    running success rate in its band (``env.task_log()`` reports it); None: the task's easiest level."""
    task_split: Literal["train", "eval"] = "train"
    """Which items the task draws: ``"train"``, or the held-out ``"eval"`` ones (disjoint from training)."""
    correct_weight: float = 1.0
    """Reward paid at the last step for a correct answer (``info["reward_components"]["correct"]``)."""
    format_weight: float = 0.0
    """Reward paid at the last step for an answer in the task's format (``info["reward_components"]["format"]``)."""
    chat_template: bool = True
    """Render a task item's messages with the tokenizer's chat template when it has one (else a plain ``User: ...
    / Assistant:`` transcript)."""

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
        self._check_tool_settings()
        if isinstance(self.stop_strings, str):
            object.__setattr__(self, "stop_strings", (self.stop_strings,))
        if any(not isinstance(s, str) or not s for s in self.stop_strings):
            raise ValueError(f"Expected stop_strings to be non-empty strings, got {self.stop_strings!r}")
        object.__setattr__(self, "stop_strings", tuple(self.stop_strings))
        if isinstance(self.dtype, str):
            object.__setattr__(self, "dtype", torch_dtype("dtype", self.dtype))
        self._check_task_settings()

    def _check_task_settings(self) -> None:
        check_choice("task_split", self.task_split, TASK_SPLITS)
        for name in ("correct_weight", "format_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"Expected {name} to be a finite number, got {value!r}")
        if not isinstance(self.chat_template, bool):
            raise ValueError(f"Expected chat_template to be a bool, got {self.chat_template!r}")
        if self.task is None:
            unused = [name for name in ("task_kwargs", "difficulty") if getattr(self, name) is not None]
            if unused:
                raise ValueError(f"Expected task= with {', '.join(unused)}, got task=None")

    @property
    def reward_spec(self) -> RewardSpec | None:
        """The package reward to build: ``reward``, else ``"length"`` without a task, else None (no package reward)."""
        if self.reward is not None:
            return self.reward
        return None if self.task is not None else "length"

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

    def _check_tool_settings(self) -> None:
        object.__setattr__(self, "tools", tuple(make_registry(self.tools, timeout_s=self._tool_timeout())))
        check_choice("tool_format", self.tool_format, ("auto", *CALL_FORMATS))
        check_int("max_tool_calls", self.max_tool_calls, 0)
        check_int("max_tool_result_tokens", self.max_tool_result_tokens, 1)
        for name in ("tool_call_reward", "tool_error_reward"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"Expected {name} to be a finite number, got {value!r}")

    def _tool_timeout(self) -> float:
        value = self.tool_timeout_s
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value <= 3600:
            raise ValueError(f"Expected tool_timeout_s to be a number in (0, 3600], got {value!r}")
        return float(value)
