"""`TextCompletionEnv` (TextCompletion-v0) and `CompletionWrapper`: one step per whole completion, token env rewards.

A completion-level env is what string-level agents and generators (``model.generate``, an API, any callable) speak:
the prompt comes in, the whole completion goes out, one reward comes back. Rather than score completions a second
way, `CompletionWrapper` feeds the completion's tokens one by one to a token-level env of the package (TextGen-v0,
or TextDialogue-v0 for one step per reply) and sums what it pays, so the rewards, the KL term, the stop rules,
prompts and tasks are the token env's own and equal its return for the same tokens by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from textgen_env.config import TextGenConfig
from textgen_env.config_docs import argument_table, document_arguments
from textgen_env.env import TextGenEnv

__all__ = ["CompletionWrapper", "TextCompletionEnv", "completion_action_space"]


def completion_action_space(vocab_size: int, max_tokens: int) -> spaces.MultiDiscrete:
    """``MultiDiscrete([vocab_size + 1] * max_tokens)``: token ids, padded with ``vocab_size`` (the padding id)."""
    return spaces.MultiDiscrete(np.full(max_tokens, vocab_size + 1, dtype=np.int64), dtype=np.int64)


class CompletionWrapper(gym.Env):
    """A token-level env of the package (TextGen-v0 or TextDialogue-v0) stepped one whole completion (reply) at a time.

    ``step(action)`` takes a str (tokenized without special tokens) or a 1-D sequence of token ids; the padding id
    ``vocab_size`` and everything after it are ignored. The ids are fed to the token env until its episode (for a
    dialogue: the reply) ends; ids past that end are ignored (``info["ignored_tokens"]``), and a completion that runs
    out first gets the EOS token appended, the way a generator ends one. The step's reward is the sum of the token
    env's rewards, and ``info["reward_components"]`` the sum of its components.

    Args:
        token_env: the token-level env; it must pick tokens by id (``action_mode="vocab"``) and end on EOS
            (``stop_on_eos=True``).
    """

    def __init__(self, token_env: gym.Env) -> None:
        base = token_env.unwrapped
        config = getattr(base, "config", None)
        if not isinstance(config, TextGenConfig) or not hasattr(base, "tokenizer"):
            raise TypeError(
                f"Expected a token-level env of textgen_env (TextGen-v0 or TextDialogue-v0), got {type(base).__name__}"
            )
        if config.action_mode != "vocab":
            raise ValueError(f"Expected action_mode='vocab' for a completion-level env, got {config.action_mode!r}")
        eos = base.tokenizer.eos_token_id
        if not config.stop_on_eos or eos is None:
            raise ValueError(
                "Expected stop_on_eos=True and a tokenizer with an EOS token for a completion-level env (a completion "
                f"shorter than the token budget ends with EOS), got stop_on_eos={config.stop_on_eos}, eos={eos}"
            )
        self.token_env = token_env
        self.tokenizer = base.tokenizer
        self.eos_token_id = int(eos)
        self.vocab_size = len(self.tokenizer)
        self.padding_id = self.vocab_size
        """The action value that pads a completion shorter than ``max_tokens`` (it and what follows are ignored)."""
        self.max_tokens = config.max_new_tokens
        self.observation_space = token_env.observation_space
        self.action_space = completion_action_space(self.vocab_size, self.max_tokens)
        self.metadata = dict(getattr(token_env, "metadata", {}))
        self.render_mode = getattr(token_env, "render_mode", None)

    @property
    def config(self) -> TextGenConfig:
        """The token env's settings (lengths, reward, KL coefficient); ``max_new_tokens`` bounds a completion."""
        return self.token_env.unwrapped.config  # type: ignore[attr-defined]  # gym.Env has no config; __init__ checked it is a TextGenConfig

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        return self.token_env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        queue = self.token_ids(action)
        total = 0.0
        components: dict[str, float] = {}
        stepped: list[int] = []
        reference: list[float] = []
        while True:
            token = queue.pop(0) if queue else self.eos_token_id  # a completion that runs out ends like generate's
            observation, reward, terminated, truncated, info = self.token_env.step(token)
            stepped.append(token)
            total += float(reward)
            for key, value in info.get("reward_components", {}).items():
                components[key] = components.get(key, 0.0) + value
            if "reference_logprob" in info:
                reference.append(info["reference_logprob"])
            if terminated or truncated or info.get("reply_ended"):
                break
        info = dict(info)
        info["reward_components"] = components
        info["completion_ids"] = stepped
        info["ignored_tokens"] = len(queue)
        if reference:
            info.pop("reference_logprob", None)
            info["reference_logprobs"] = reference
        return observation, total, terminated, truncated, info

    def token_ids(self, action: Any) -> list[int]:
        """The completion's token ids from a str or a sequence of ids, cut at the first padding id."""
        if isinstance(action, str):
            return list(self.tokenizer(action, add_special_tokens=False)["input_ids"])
        array = np.asarray(action)
        if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
            raise TypeError(
                f"Expected the action to be a str or a 1-D sequence of token ids, got {type(action).__name__} "
                f"of shape {array.shape} and dtype {array.dtype}"
            )
        ids = array.astype(np.int64).tolist()
        bad = [i for i in ids if not 0 <= i <= self.padding_id]
        if bad:
            raise ValueError(f"Expected token ids in [0, {self.padding_id}] ({self.padding_id} pads), got {bad[0]}")
        return ids[: ids.index(self.padding_id)] if self.padding_id in ids else ids

    def pad(self, ids: Sequence[int]) -> np.ndarray:
        """The action for a completion's ids as the action space holds it: cut to ``max_tokens``, padded with
        ``padding_id`` (for agents that need fixed-length actions, e.g. from ``model.generate``'s ragged output)."""
        out = np.full(self.max_tokens, self.padding_id, dtype=np.int64)
        kept = list(ids)[: self.max_tokens]
        out[: len(kept)] = kept
        return out

    def render(self) -> Any:
        return self.token_env.render()

    def close(self) -> None:
        self.token_env.close()


@document_arguments(argument_table(TextGenConfig))
class TextCompletionEnv(CompletionWrapper):
    """Text generation with one step per completion: the prompt in, the whole completion out, one reward back.

    ## Description
    TextGen-v0 with the completion as one action, for string-level agents and generators (``model.generate``, an
    API client, any callable). The env feeds the completion's tokens to its own TextGen-v0 (``token_env``) and
    returns what that env paid, so prompts, tasks, rewards, the KL term and the stop rules are TextGen-v0's and the
    reward equals TextGen-v0's return for the same tokens. For one step per reply of a conversation, wrap
    TextDialogue-v0: ``CompletionWrapper(gym.make("TextDialogue-v0", ...))``.

    ## Action Space
    ``MultiDiscrete([V + 1] * max_new_tokens)`` with ``V = len(tokenizer)``: the completion's token ids, padded with
    ``V`` (``env.padding_id``; it and the ids after it are ignored). ``step`` also takes a ``str`` (tokenized
    without special tokens) or a list of ids of any length. The tokens are used until a stop rule ends the episode
    (EOS, a stop string, ``max_new_tokens``); later ids are ignored (``info["ignored_tokens"]``); a completion that
    ends before any rule fires gets EOS appended (so ``stop_on_eos`` must be True).

    ## Observation Space
    TextGen-v0's: ``Dict(input_ids=Box(int64, (L,)), attention_mask=Box(int8, (L,)))``, ``L = max_prompt_tokens +
    max_new_tokens``, left-padded (the prompt after ``reset``, prompt and completion after ``step``), or
    ``Box(float32, (hidden_size,))`` with ``observation_mode="hidden"``. The text is in ``info["prompt"]``.

    ## Rewards
    The sum of TextGen-v0's per-token rewards for the completion: the reward's score of the completion (sparse or
    dense, they sum to the same) plus, with ``kl_coef > 0``, ``kl_coef * sum_t log pi_ref(a_t | s_t)``.
    ``info["reward_components"]`` sums each component over the tokens.

    ## Starting State
    A prompt from ``prompts`` (or ``reset(options={"prompt": ...})``), as in TextGen-v0.

    ## Episode End
    Every episode is one step: ``terminated`` is True after it. ``info["stop_reason"]`` says which stop rule ended
    the completion.

    ## Arguments
    TextGen-v0's (the table is generated from `TextGenConfig`'s field docstrings), with ``action_mode="vocab"`` and
    ``stop_on_eos=True`` required.

    {arguments}

    ``info`` after a step holds TextGen-v0's last-step info (``prompt``, ``text``, ``stop_reason``,
    ``episode_return``) and ``reward_components``, ``completion_ids`` (the ids used, EOS included),
    ``ignored_tokens`` and, with ``kl_coef > 0`` or ``reference_logprobs``, ``reference_logprobs`` (one per token).

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["human", "ansi", "rgb_array"], "render_fps": 4}

    def __init__(self, **kwargs: Any) -> None:
        render_mode = kwargs.get("render_mode")
        if render_mode == "human":  # the token env would print at every token; this env prints once per step
            kwargs["render_mode"] = "ansi"
        super().__init__(TextGenEnv(**kwargs))
        self.render_mode = render_mode

    @property
    def model(self) -> Any:
        """The env's own model (TextGen-v0's: the KL reference; loaded on first access), e.g. to generate with."""
        return self.token_env.model  # type: ignore[attr-defined]  # a TextGenEnv, built in __init__

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        result = super().step(action)
        if self.render_mode == "human":
            self.render()
        return result

    def render(self) -> Any:
        if self.render_mode == "human":
            print(self.token_env.render())
            return None
        return self.token_env.render()
