"""`EpisodeBatch`: the state and rules of N parallel text-generation episodes ("slots"), stepped together.

Both `TextGenEnv` (one slot) and `TextGenVectorEnv` (N slots) are thin shells over this class, so a vector env gives
exactly the results of N single envs. One call to `advance` restarts some slots with new prompts, appends one token
to others and leaves the rest idle (exactly as they are, finished or not); when the env runs its own model (top-k
candidates, hidden observations, action masks) that is one KV-cached single-token forward for all slots together
(`SlotKVCache`, which holds the idle slots' rows).

Token observations are **left-padded**: a slot's newest token is always in the last position.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from textgen_env.config import TextGenConfig
from textgen_env.kv import SlotKVCache
from textgen_env.models import (
    check_vocabulary_rows,
    load_model,
    load_tokenizer,
    model_vocabulary_rows,
    prepare_tokenizer,
)
from textgen_env.prompts import Prompt, make_prompt_source
from textgen_env.rendering import render_frame
from textgen_env.rewards import FunctionReward, RewardShaper, make_reward
from textgen_env.spaces import HIDDEN_BOUND
from textgen_env.task_source import TaskSource, render_item, task_info
from textgen_env.tasks import TaskItem
from textgen_env.tool_episodes import ToolEpisodes, ToolInsert

__all__ = ["EpisodeBatch", "StepBatch"]

_PROMPT_CACHE_LIMIT = 50_000
_NO_REWARD = FunctionReward(lambda prompt, completion, done: 0.0, name="none")  # a task env without package reward


class StepBatch:
    """What one `EpisodeBatch.advance` produced for all slots."""

    __slots__ = ("infos", "rewards", "terminated", "truncated")

    def __init__(self, num_slots: int) -> None:
        self.rewards = np.zeros(num_slots, dtype=np.float64)
        self.terminated = np.zeros(num_slots, dtype=bool)
        self.truncated = np.zeros(num_slots, dtype=bool)
        self.infos: list[dict[str, Any]] = [{} for _ in range(num_slots)]


class EpisodeBatch:
    """N parallel episodes sharing one tokenizer, prompt source, reward and (when needed) model.

    Args:
        config: the env settings.
        num_slots: N, the number of parallel episodes.
    """

    def __init__(self, config: TextGenConfig, num_slots: int) -> None:
        self.config = config
        self.num_slots = num_slots
        self._model: PreTrainedModel | None = None
        if isinstance(config.model, PreTrainedModel):
            self._model = self._checked(config.model)
            source = config.tokenizer or getattr(config.model.config, "_name_or_path", None)
            if isinstance(source, PreTrainedTokenizerBase):
                self.tokenizer = prepare_tokenizer(source)
            elif source:
                self.tokenizer = load_tokenizer(source)
            else:
                raise ValueError(
                    "Expected tokenizer= for a model instance without a saved name_or_path, got tokenizer=None"
                )
            rows = cast(int, self._model.get_input_embeddings().num_embeddings)  # an nn.Embedding's row count
        else:
            tokenizer = config.tokenizer if config.tokenizer is not None else config.model
            if isinstance(tokenizer, PreTrainedTokenizerBase):
                self.tokenizer = prepare_tokenizer(tokenizer)
            else:
                self.tokenizer = load_tokenizer(tokenizer)
            rows = model_vocabulary_rows(config.model)
        check_vocabulary_rows(rows, self.tokenizer)
        self.vocab_size = len(self.tokenizer)
        self.prompt_source = make_prompt_source(config.prompts)
        self.task: TaskSource | None = None
        if config.task is not None:
            self.task = TaskSource(config.task, config.task_kwargs, config.difficulty, config.task_split)
        self.items: list[TaskItem | None] = [None] * num_slots  # each slot's task item (with a task)
        self.task_scores: list[dict[str, float] | None] = [None] * num_slots  # its scores once the episode ended
        self.given_items = [False] * num_slots  # whether each slot's item came from a reset option
        spec = config.reward_spec
        self.has_package_reward = spec is not None
        self.reward = make_reward(spec, config.reward_kwargs) if spec is not None else _NO_REWARD
        self.shaper = RewardShaper(self.reward, config.reward_mode, num_slots)
        self.pad_token_id = int(self.tokenizer.pad_token_id)
        self.stop_rules = config.stop_rules(self.tokenizer.eos_token_id)  # the same rules as the evaluation's
        self.eos_token_id = self.stop_rules.eos_token_id
        length = config.sequence_length
        self.input_ids = np.full((num_slots, length), self.pad_token_id, dtype=np.int64)  # (N, L) left-padded
        self.attention_mask = np.zeros((num_slots, length), dtype=np.int8)  # (N, L)
        self.prompts: list[Prompt] = [Prompt("")] * num_slots
        self.completion_ids: list[list[int]] = [[] for _ in range(num_slots)]
        self.completions: list[str] = [""] * num_slots
        self.last_tokens: list[str] = [""] * num_slots
        self.last_rewards = np.zeros(num_slots)
        self.last_components: list[dict[str, float]] = [{} for _ in range(num_slots)]
        self.returns = np.zeros(num_slots)
        self.done = np.ones(num_slots, dtype=bool)
        self.stop_reasons: list[str | None] = [None] * num_slots
        self.started = False
        self._prompt_ids: dict[str, list[int]] = {}
        self._token_texts: dict[int, str] = {}
        self._kv: SlotKVCache | None = None
        self.logits: torch.Tensor | None = None  # (N, V) env model's next-token logits over the tokenizer's ids
        self._full_logits: torch.Tensor | None = None  # (N, rows) the same over all embedding rows
        self.kl_coef = float(config.kl_coef)
        self.reference_logprobs = np.zeros(num_slots)  # (N,) log pi_ref(a_t | s_t) of each slot's latest token
        self.hidden: np.ndarray | None = None  # (N, H) env model's last hidden state
        self.candidates: np.ndarray | None = None  # (N, K) top-k token ids, best first
        self.env_token_positions: list[list[int]] = [[] for _ in range(num_slots)]  # completion indices, env tokens
        self.tools = ToolEpisodes(config, self.tokenizer, num_slots) if config.tools else None
        self._inserts: list[ToolInsert | None] = [None] * num_slots  # the tool result inserted at the latest step
        if config.needs_model:
            self._kv = SlotKVCache(self.model, num_slots, output_hidden=config.observation_mode == "hidden")

    # ----------------------------------------------------------------------------------------------------- model
    @property
    def model(self) -> PreTrainedModel:
        """The env's model, loaded on first use (token-only modes never need it)."""
        if self._model is None:
            model, _ = load_model(
                self.config.model, tokenizer=self.tokenizer, device=self.config.device, dtype=self.config.dtype
            )
            self._model = self._checked(model)
        return self._model

    def _checked(self, model: PreTrainedModel) -> PreTrainedModel:
        """`model` after checking that it fits the env's sequence length, on the env's device when the env uses it."""
        limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
        if limit is not None and limit < self.config.sequence_length:
            raise ValueError(
                f"Expected max_prompt_tokens + max_new_tokens <= the model's {limit} positions, got "
                f"{self.config.sequence_length}"
            )
        return model.to(self.config.device) if self.config.needs_model else model  # type: ignore[arg-type]  # transformers' wrapped `to` is typed as an unbound function

    @property
    def loaded_model(self) -> PreTrainedModel | None:
        """The env's model if it is already in memory (given as an instance or needed by the mode), else None."""
        return self._model

    @property
    def hidden_size(self) -> int:
        """Width of the hidden observation."""
        return int(self.model.config.get_text_config().hidden_size)

    # ----------------------------------------------------------------------------------------------------- steps
    def advance(
        self,
        actions: np.ndarray | None,
        restart: np.ndarray,
        rngs: Sequence[np.random.Generator | None],
        idle: np.ndarray | None = None,
        prompts: Sequence[Prompt | TaskItem | None] | None = None,
    ) -> StepBatch:
        """Restart the slots where `restart` is True (new prompt), leave the idle ones and step the others.

        Args:
            actions: (N,) action per slot; entries of restarting and idle slots are ignored. None when no slot
                steps.
            restart: (N,) bool.
            rngs: per slot, the generator that picks its next prompt (used only for restarting slots).
            idle: (N,) bool, slots that neither restart nor step, finished or not: their episode (tokens, returns,
                reward state, model outputs) stays exactly as it is, nothing is scored, their reward is 0.
            prompts: per slot, the prompt (or task item, in a task env) a restarting slot starts from; None (or a
                None entry) draws one from the slot's generator.
        """
        result = StepBatch(self.num_slots)
        idle = np.zeros(self.num_slots, dtype=bool) if idle is None else np.asarray(idle, dtype=bool) & ~restart
        restarting = np.flatnonzero(restart)
        stepping = np.flatnonzero(~restart & ~idle)
        if len(stepping):
            if not self.started or self.done[stepping].any():
                raise RuntimeError("Cannot step a finished episode; restart it first")  # the envs check this
            tokens = self._actions_to_tokens(actions, stepping)
            if self.config.uses_reference:  # log pi_ref(a_t | s_t), from the logits the cache gave for s_t
                assert self._full_logits is not None  # a started episode has had a cache step
                log_probs = torch.log_softmax(self._full_logits[torch.as_tensor(stepping)], dim=-1)
                chosen = log_probs.gather(1, torch.as_tensor(tokens)[:, None]).squeeze(1)
                self.reference_logprobs[stepping] = chosen.double().cpu().numpy()
            self._append(stepping, tokens)
        for i in restarting.tolist():
            self._restart(i, rngs[i], None if prompts is None else prompts[i])
        self.started = True
        self._inserts = [None] * self.num_slots
        if len(stepping):
            self._score(stepping, result)
            if self.tools is not None:  # results of calls closed by these actions go in as env tokens
                self._inserts = self.tools.run(self, stepping, result)
        if self._kv is not None:
            refill = restart | np.array([x is not None and len(x.token_ids) > 0 for x in self._inserts])
            next_tokens = [
                self.prompt_token_ids(self.prompts[i].text) + (self.completion_ids[i] if not restart[i] else [])
                if refill[i]
                else self.completion_ids[i][-1:]
                for i in range(self.num_slots)
            ]  # a slot that got a tool result is prefilled anew with its whole text
            out = self._kv.advance(next_tokens, refill.tolist(), hold=idle.tolist())  # idle rows keep their outputs
            self._full_logits = out.logits  # (N, rows): log-probs normalise over every row the model has
            self.logits = out.logits[:, : self.vocab_size]
            if out.hidden is not None:
                self.hidden = out.hidden.cpu().numpy()
            if self.config.action_mode == "top_k":
                self.candidates = torch.topk(self.logits, self.config.top_k, dim=-1).indices.cpu().numpy()
        for i in range(self.num_slots):
            result.infos[i] = self.info(i, restarted=bool(restart[i]))
        return result

    def _actions_to_tokens(self, actions: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
        if actions is None:
            raise TypeError("Expected an action for every stepping slot, got None")
        chosen = np.asarray(actions)[rows]
        if chosen.dtype.kind not in "iu":
            if chosen.dtype.kind == "f" and np.all(np.mod(chosen, 1) == 0):
                chosen = chosen.astype(np.int64)
            else:
                raise TypeError(f"Expected integer actions, got {chosen.dtype} values {chosen.tolist()[:4]}")
        limit = self.config.top_k if self.config.action_mode == "top_k" else self.vocab_size
        bad = (chosen < 0) | (chosen >= limit)
        if bad.any():
            raise ValueError(f"Expected actions in [0, {limit}), got {int(chosen[np.argmax(bad)])}")
        if self.config.action_mode == "top_k":
            assert self.candidates is not None  # every cache step of a top_k env sets them
            return self.candidates[rows, chosen]
        return chosen.astype(np.int64)

    def _append(self, rows: np.ndarray, tokens: np.ndarray) -> None:
        self.input_ids[rows, :-1] = self.input_ids[rows, 1:]
        self.input_ids[rows, -1] = tokens
        self.attention_mask[rows, :-1] = self.attention_mask[rows, 1:]
        self.attention_mask[rows, -1] = 1
        for row, token in zip(rows.tolist(), tokens.tolist()):
            self.completion_ids[row].append(token)
            self.last_tokens[row] = self.token_text(token)
        texts = self._decode([self.completion_ids[r] for r in rows.tolist()])
        for row, text in zip(rows.tolist(), texts):
            self.completions[row] = text

    def _decode(self, sequences: list[list[int]]) -> list[str]:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None and not getattr(self.tokenizer, "clean_up_tokenization_spaces", False):
            return backend.decode_batch(sequences, skip_special_tokens=True)  # skips transformers' input conversion
        return self.tokenizer.batch_decode(sequences, skip_special_tokens=True)

    def _score(self, rows: np.ndarray, result: StepBatch) -> None:
        for row in rows.tolist():
            self.stop_reasons[row] = self.stop_rules.reason(self.completion_ids[row], self.completions[row])
            self.done[row] = self.stop_reasons[row] is not None
        rows_list = rows.tolist()
        rewards, parts = np.zeros(len(rows_list)), dict[str, np.ndarray]()
        if self.has_package_reward:
            references = [self.prompts[r].references for r in rows_list] if self.reward.needs_references else None
            rewards, parts = self.shaper.step(
                rows_list,
                [self.prompts[r].text for r in rows_list],
                [self.completions[r] for r in rows_list],
                self.done[rows].tolist(),
                references,
            )
        if self.task is not None:
            rewards = rewards + self._score_task(rows_list, parts)
        if self.config.uses_kl:
            parts["kl"] = self.kl_coef * self.reference_logprobs[rows]
            rewards = rewards + parts["kl"]
        result.rewards[rows] = rewards
        result.terminated[rows] = self.done[rows]
        self.last_rewards[rows] = rewards
        self.returns[rows] += rewards
        for j, row in enumerate(rows_list):
            self.last_components[row] = {key: float(values[j]) for key, values in parts.items()}

    def _score_task(self, rows: list[int], parts: dict[str, np.ndarray]) -> np.ndarray:
        """The task's reward of each of `rows` (nonzero at the last step only); adds ``correct`` and ``format`` to
        `parts` and tells the curriculum how each finished episode went."""
        assert self.task is not None  # called for task envs only
        correct, formatted = np.zeros(len(rows)), np.zeros(len(rows))
        for j, row in enumerate(rows):
            item = self.items[row]
            if not self.done[row] or item is None:
                continue
            scores = self.task.score(self.policy_text(row), item)
            self.task_scores[row] = scores
            correct[j], formatted[j] = scores.get("correct", 0.0), scores.get("format", 0.0)
            if not self.given_items[row]:
                self.task.record(correct[j])
        parts["correct"] = self.config.correct_weight * correct
        parts["format"] = self.config.format_weight * formatted
        return parts["correct"] + parts["format"]

    def task_log(self) -> dict[str, float]:
        """Namespaced task values for a training log (``task/difficulty``); empty without a task."""
        return self.task.log() if self.task is not None else {}

    def task_prompt(self, item: TaskItem) -> str:
        """The prompt text of a task item, as this env renders it (chat template or plain transcript); with tools,
        the system prompt ends with their description and call format (`CallFormat.describe`)."""
        if self.tools is not None:
            described = self.tools.format.describe(self.tools.registry)
            system = f"{item.system_prompt}\n\n{described}" if item.system_prompt else described
            item = dataclasses.replace(item, system_prompt=system)
        return render_item(self.tokenizer, item, template=self.config.chat_template)

    def _restart(self, slot: int, rng: np.random.Generator | None, prompt: Prompt | TaskItem | None = None) -> None:
        self.items[slot], self.task_scores[slot] = None, None
        self.given_items[slot] = False
        if isinstance(prompt, TaskItem):  # a given item (an evaluation's): scored, but kept out of the curriculum
            if self.task is None:
                raise ValueError("Expected an item option only in a task env (task=...), got one in an env without")
            item = self.items[slot] = prompt
            self.given_items[slot] = True
            prompt = Prompt(self.task_prompt(item), (item.answer,))
        elif prompt is not None and self.task is not None:
            raise ValueError(
                f"Expected no prompt option in a task env (its items are the prompts), got {prompt.text!r}"
            )
        if prompt is None:
            if rng is None:
                raise RuntimeError(f"Expected a random generator for slot {slot}, got None")
            if self.task is not None:
                item = self.items[slot] = self.task.sample(rng)
                prompt = Prompt(self.task_prompt(item), (item.answer,))
            else:
                prompt = self.prompt_source.sample(rng)
        self.prompts[slot] = prompt
        ids = self.prompt_token_ids(prompt.text)
        self.input_ids[slot] = self.pad_token_id
        self.attention_mask[slot] = 0
        self.input_ids[slot, -len(ids) :] = ids
        self.attention_mask[slot, -len(ids) :] = 1
        self.completion_ids[slot] = []
        self.env_token_positions[slot] = []
        if self.tools is not None:
            self.tools.reset(slot)
        self.completions[slot] = ""
        self.last_tokens[slot] = ""
        self.last_rewards[slot] = 0.0
        self.returns[slot] = 0.0
        self.done[slot] = False
        self.stop_reasons[slot] = None
        self.shaper.reset([slot])

    def prompt_token_ids(self, text: str) -> list[int]:
        ids = self._prompt_ids.get(text)
        if ids is None:
            ids = self.tokenizer(text)["input_ids"]
            limit = self.config.max_prompt_tokens
            if len(ids) > limit:
                warnings.warn(
                    f"Prompt of {len(ids)} tokens is longer than max_prompt_tokens={limit}; keeping its last "
                    f"{limit} tokens: {text[:40]!r}...",
                    stacklevel=2,
                )
                ids = ids[-limit:]
            if not ids:  # an empty prompt still needs one token for the model to condition on
                start = self.tokenizer.bos_token_id
                ids = [start if start is not None else self.pad_token_id]
            if len(self._prompt_ids) < _PROMPT_CACHE_LIMIT:
                self._prompt_ids[text] = ids
        return ids

    # ---------------------------------------------------------------------------------------------- observations
    def token_text(self, token: int) -> str:
        """The decoded text of one token (cached)."""
        text = self._token_texts.get(token)
        if text is None:
            text = self._token_texts[token] = cast(str, self.tokenizer.decode([token]))
        return text

    def observation(self, slots: slice | int = slice(None)) -> Any:
        """Observations of `slots` in the configured mode (copies, safe to keep)."""
        if self.config.observation_mode == "hidden":
            assert self.hidden is not None  # the hidden mode runs the model with output_hidden on every step
            return np.clip(self.hidden[slots], -HIDDEN_BOUND, HIDDEN_BOUND).astype(np.float32)
        return {
            "input_ids": self.input_ids[slots].copy(),
            "attention_mask": self.attention_mask[slots].copy(),
        }

    def info(self, slot: int, restarted: bool = False) -> dict[str, Any]:
        """The info dict of `slot` after its latest step or restart."""
        info: dict[str, Any] = {"prompt": self.prompts[slot].text, "text": self.completions[slot]}
        item = self.items[slot]
        if self.task is not None and item is not None:
            info["task"] = task_info(self.task.name, item, self.task_scores[slot])
        if restarted:
            info["prompt_tokens"] = int(self.attention_mask[slot].sum())
            return info
        info["token"] = self.last_tokens[slot]
        info["reward_components"] = self.last_components[slot]
        if self.config.uses_reference:
            info["reference_logprob"] = float(self.reference_logprobs[slot])
        if self.stop_reasons[slot] is not None:
            info["stop_reason"] = self.stop_reasons[slot]
            info["episode_return"] = float(self.returns[slot])
        if self.tools is not None:
            info.update(self.tools.info(slot, self._inserts[slot], self.stop_reasons[slot] is not None))
        return info

    def policy_text(self, slot: int) -> str:
        """The completion of `slot` without the env's inserted tokens: what the policy wrote, which a task scores
        (a tool result in the text is never taken as the policy's answer)."""
        if not self.env_token_positions[slot]:
            return self.completions[slot]
        inserted = set(self.env_token_positions[slot])
        kept = [token for i, token in enumerate(self.completion_ids[slot]) if i not in inserted]
        return self._decode([kept])[0]

    def env_token_mask(self, slot: int) -> list[bool]:
        """Per completion token of `slot`: True where the env inserted it (a tool result), False for actions."""
        mask = [False] * len(self.completion_ids[slot])
        for position in self.env_token_positions[slot]:
            mask[position] = True
        return mask

    def set_kl_coef(self, value: float) -> None:
        """Change the KL coefficient (e.g. from an adaptive controller); the env must use KL already."""
        if not self.config.uses_kl:
            raise ValueError("Expected an env built with kl_coef > 0 (it loads the reference model), got kl_coef=0")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < float("inf")):
            raise ValueError(f"Expected kl_coef to be a finite number >= 0, got {value!r}")
        self.kl_coef = float(value)

    def action_masks(self) -> np.ndarray:
        """(N, V) bool: the tokens allowed in 'vocab' mode under mask_top_k / mask_top_p (all True when unset)."""
        if self.config.action_mode != "vocab":
            return np.ones((self.num_slots, self.config.top_k), dtype=bool)
        if self.logits is None:
            return np.ones((self.num_slots, self.vocab_size), dtype=bool)
        allowed = torch.ones_like(self.logits, dtype=torch.bool)
        if self.config.mask_top_k is not None:
            k = min(self.config.mask_top_k, self.vocab_size)
            kth = torch.topk(self.logits, k, dim=-1).values[:, -1:]
            allowed &= self.logits >= kth
        if self.config.mask_top_p is not None:
            probs = torch.softmax(self.logits, dim=-1)
            sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
            mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # keep a token while the mass before it < p
            keep_sorted = mass_before < self.config.mask_top_p
            allowed &= torch.zeros_like(allowed).scatter(-1, order, keep_sorted)
        return allowed.cpu().numpy()

    def render_rgb(self, slot: int = 0) -> np.ndarray:
        """Prompt, completion (newest token highlighted) and reward of `slot` as an (H, W, 3) uint8 picture."""
        return render_frame(
            self.prompts[slot].text,
            self.completions[slot],
            self.last_tokens[slot],
            float(self.last_rewards[slot]),
            float(self.returns[slot]),
            tokens=len(self.completion_ids[slot]),
            max_tokens=self.config.max_new_tokens,
            stop_reason=self.stop_reasons[slot],
        )

    def render_text(self, slot: int = 0) -> str:
        """Prompt, completion and reward of `slot` as plain text."""
        status = f" [done: {self.stop_reasons[slot]}]" if self.stop_reasons[slot] else ""
        return (
            f"Prompt:     {self.prompts[slot].text}\n"
            f"Completion: {self.completions[slot]}\n"
            f"Reward:     last {self.last_rewards[slot]:+.4f} | return {self.returns[slot]:+.4f} | "
            f"tokens {len(self.completion_ids[slot])}/{self.config.max_new_tokens}{status}\n"
        )
