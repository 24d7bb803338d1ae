"""`EditBatch`: the state and rules of N parallel edit episodes ("slots"), stepped together.

`TextEditEnv` (one slot) and `TextEditVectorEnv` (N slots) are thin shells over this class, so a vector env gives
the results of N single envs. Per call, all slots' LM text (candidate inserts/replaces/rewrites, structured LM
edits, generated drafts) is sampled in one batch, and all slots' texts are scored in one reward call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from transformers import PreTrainedModel

from textgen_env.edit.config import TextEditConfig
from textgen_env.edit.drafts import checked_draft, make_draft_source
from textgen_env.edit.infill import InfillRequest, InfillWriter
from textgen_env.edit.operations import (
    OPERATIONS,
    Edit,
    apply_edit,
    check_edit,
    describe,
    join_words,
    sentence_of,
    sentence_spans,
)
from textgen_env.edit.proposer import Candidate, CandidateProposer
from textgen_env.edit.render import render_edit_text
from textgen_env.edit.scoring import PotentialScorer
from textgen_env.edit.spaces import left_padded
from textgen_env.generation import torch_generator
from textgen_env.models import load_model

__all__ = ["EditBatch", "EditStep"]

_TOKEN_CACHE_LIMIT = 50_000


class EditStep:
    """What one `EditBatch` call produced for all slots."""

    def __init__(self, num_slots: int) -> None:
        self.rewards = np.zeros(num_slots, dtype=np.float64)
        self.terminated = np.zeros(num_slots, dtype=bool)
        self.truncated = np.zeros(num_slots, dtype=bool)
        self.infos: list[dict[str, Any]] = [{} for _ in range(num_slots)]


class EditBatch:
    """N parallel edit episodes sharing one tokenizer, LM, proposer and reward.

    Args:
        config: the env settings.
        num_slots: N.
    """

    def __init__(self, config: TextEditConfig, num_slots: int) -> None:
        self.config = config
        self.num_slots = num_slots
        dtype = None if isinstance(config.model, PreTrainedModel) else config.dtype
        model, self.tokenizer = load_model(config.model, tokenizer=config.tokenizer, device=config.device, dtype=dtype)
        self.model = model
        limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
        needed = config.max_text_tokens + max(config.max_edit_tokens, config.draft_tokens)
        if limit is not None and limit < needed:
            raise ValueError(
                f"Expected max_text_tokens + max(max_edit_tokens, draft_tokens) <= the model's {limit} positions, "
                f"got {needed}"
            )
        self.vocab_size = len(self.tokenizer)
        self.pad_token_id = int(self.tokenizer.pad_token_id)
        self.draft_source = make_draft_source(config.drafts)
        self.writer = InfillWriter(
            model,
            self.tokenizer,
            template=config.infill_template,
            max_new_tokens=config.max_edit_tokens,
            max_prompt_tokens=config.max_text_tokens,
            temperature=config.temperature,
        )
        self.proposer = CandidateProposer(config, self._fits)
        self.scorer = PotentialScorer(config, model, self.tokenizer)
        self.reward = self.scorer.reward
        self._token_ids: dict[str, list[int]] = {}
        n = num_slots
        self.prompts, self.drafts = [""] * n, [""] * n
        self.words: list[list[str]] = [[] for _ in range(n)]
        self.candidates: list[list[Candidate]] = [[] for _ in range(n)]
        self.potentials: list[dict[str, float]] = [{} for _ in range(n)]
        self.edits = np.zeros(n, dtype=np.int64)
        self.returns, self.last_rewards = np.zeros(n), np.zeros(n)
        self.done = np.ones(n, dtype=bool)
        self.stop_reasons: list[str | None] = [None] * n
        self.last_edits: list[str] = [""] * n
        self.invalid: list[str | None] = [None] * n
        self.last_components: list[dict[str, float]] = [{} for _ in range(n)]
        self.started = False

    # ------------------------------------------------------------------------------------------------ helpers
    def token_ids(self, text: str) -> list[int]:
        """The tokens of `text` (cached)."""
        ids = self._token_ids.get(text)
        if ids is None:
            ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            if len(self._token_ids) < _TOKEN_CACHE_LIMIT:
                self._token_ids[text] = ids
        return ids

    def _fits(self, texts: list[str]) -> list[bool]:
        return [len(self.token_ids(t)) <= self.config.max_text_tokens for t in texts]

    def text(self, slot: int) -> str:
        """The current text of `slot`."""
        return join_words(self.words[slot])

    # --------------------------------------------------------------------------------------------- episodes
    def restart(
        self, slots: Sequence[int], rngs: Sequence[np.random.Generator], drafts: Sequence[str | None] | None = None
    ) -> EditStep:
        """Start new episodes in `slots`: a given draft, a drawn one, or one the LM writes from a drawn prompt."""
        result = EditStep(self.num_slots)
        generate: list[int] = []
        for slot in slots:
            given = None if drafts is None else drafts[slot]
            if given is not None:
                self.prompts[slot], self.drafts[slot] = "", given
            elif self.config.draft_source == "generate":
                self.prompts[slot] = self.draft_source.sample(rngs[slot]).text
                generate.append(slot)
            else:
                self.prompts[slot], self.drafts[slot] = "", self.draft_source.sample(rngs[slot]).text
        if generate:
            requests = [InfillRequest(self.prompts[s], max_words=self.config.max_words) for s in generate]
            generators = [torch_generator(rngs[s]) for s in generate]
            prompt_ids = [self.writer.prompt_ids(r) for r in requests]
            texts = self.writer.sample(prompt_ids, self.config.draft_tokens, generators)
            for slot, text in zip(generate, texts):
                self.drafts[slot] = text or self.prompts[slot]  # a model that ends at once leaves the prompt
        for slot in slots:
            draft = checked_draft(
                self.drafts[slot], self.config.max_words, lambda t: len(self.token_ids(t)), self.config.max_text_tokens
            )
            self.drafts[slot], self.words[slot] = draft, draft.split()
            self.edits[slot], self.returns[slot], self.last_rewards[slot] = 0, 0.0, 0.0
            self.done[slot], self.stop_reasons[slot] = False, None
            self.last_edits[slot], self.invalid[slot], self.last_components[slot] = "", None, {}
        slots = list(slots)
        if self.config.reward_mode == "dense" and slots:
            self._set_potentials(slots, self._score(slots, [False] * len(slots)))
        self._propose(slots, rngs)
        self.started = True
        for slot in slots:
            result.infos[slot] = self.info(slot, restarted=True)
        return result

    def step(self, slots: Sequence[int], actions: np.ndarray, rngs: Sequence[np.random.Generator]) -> EditStep:
        """Apply each slot's action (see `TextEditEnv`), pay rewards, propose the next candidates."""
        result = EditStep(self.num_slots)
        slots = list(slots)
        edits = {slot: self._decode(slot, actions[slot]) for slot in slots}
        self._write_structured(edits, rngs)
        reasons = {
            slot: None if isinstance(edit, Edit) and edit.op == "stop" else self._why_invalid(slot, edit)
            for slot, edit in edits.items()
        }
        for slot, reason in reasons.items():  # before any slot changes, so that an error leaves every slot as it was
            if reason is not None and self.config.invalid_action == "raise":
                given = np.asarray(actions[slot]).tolist()
                raise ValueError(f"Expected a valid edit action, got {given} for slot {slot}: {reason}")
        penalties = np.zeros(self.num_slots)
        for slot, edit in edits.items():
            reason = self.invalid[slot] = reasons[slot]
            if reason is not None:
                penalties[slot] = self.config.invalid_penalty
                self.last_edits[slot] = f"invalid: {reason}"
                self.edits[slot] += 1
            elif isinstance(edit, Edit) and edit.op == "stop":
                self.last_edits[slot] = "stop"
                self.stop_reasons[slot] = "stop"
            else:
                assert isinstance(edit, Edit)  # a string edit is its own invalid reason
                self.last_edits[slot] = describe(self.words[slot], edit)
                self.words[slot] = apply_edit(self.words[slot], edit)
                self.edits[slot] += 1
            if self.stop_reasons[slot] is None and self.edits[slot] >= self.config.max_edits:
                self.stop_reasons[slot] = "max_edits"
            self.done[slot] = self.stop_reasons[slot] is not None
        self._pay(slots, edits, penalties, result)
        self._propose([s for s in slots if not self.done[s]], rngs)
        for slot in slots:
            result.terminated[slot] = self.done[slot]
            result.infos[slot] = self.info(slot)
        return result

    def _pay(self, slots: list[int], edits: dict[int, Any], penalties: np.ndarray, result: EditStep) -> None:
        dense = self.config.reward_mode == "dense"
        scored = [s for s in slots if dense or self.done[s]]
        parts = self._score(scored, [bool(self.done[s]) for s in scored]) if scored else {}
        for slot in slots:
            components: dict[str, float] = {}
            if slot in scored:
                row = scored.index(slot)
                for key, values in parts.items():
                    components[key] = float(values[row]) - (self.potentials[slot].get(key, 0.0) if dense else 0.0)
            edited = self.invalid[slot] is None and isinstance(edits[slot], Edit) and edits[slot].op != "stop"
            components["edit_cost"] = -self.config.edit_cost if edited else 0.0
            components["invalid"] = -float(penalties[slot])
            reward = float(sum(components.values()))
            result.rewards[slot] = reward
            self.last_rewards[slot] = reward
            self.returns[slot] += reward
            self.last_components[slot] = components
        if dense and scored:
            self._set_potentials(scored, parts)

    def _score(self, slots: list[int], dones: list[bool]) -> dict[str, np.ndarray]:
        return self.scorer(
            [self.prompts[s] for s in slots], [self.text(s) for s in slots], [self.drafts[s] for s in slots], dones
        )

    def _set_potentials(self, slots: list[int], parts: dict[str, np.ndarray]) -> None:
        for row, slot in enumerate(slots):
            self.potentials[slot] = {key: float(values[row]) for key, values in parts.items()}

    def _propose(self, slots: list[int], rngs: Sequence[np.random.Generator]) -> None:
        if self.config.action_mode != "candidates":
            return
        plans = {slot: self.proposer.plan(self.words[slot], rngs[slot]) for slot in slots}
        requests = [(slot, r) for slot, plan in plans.items() for r in plan.requests]
        texts = self.writer.write([r for _, r in requests], [rngs[slot] for slot, _ in requests])
        for slot, plan in plans.items():
            own = [text for (owner, _), text in zip(requests, texts) if owner == slot]
            self.candidates[slot] = self.proposer.finish(plan, own, rngs[slot])

    # ------------------------------------------------------------------------------------------------ actions
    def _decode(self, slot: int, action: Any) -> Edit | str:
        """The edit an action asks for, or why it is not one (a str)."""
        if self.config.action_mode == "candidates":
            index = int(action)
            if index == 0:
                return Edit("stop")
            if index > len(self.candidates[slot]):
                return f"candidate {index} is masked (only {len(self.candidates[slot])} this step)"
            return self.candidates[slot][index - 1].edit
        op_id, a, b = (int(x) for x in action)
        op, words = OPERATIONS[op_id], self.words[slot]
        n = len(words)
        if op == "stop":
            return Edit("stop")
        if op not in self.config.operations:
            return f"operation {op!r} is not enabled"
        if a >= n or (op in ("delete", "replace", "swap", "move") and b >= n):
            return f"word index ({a}, {b}) is not below the {n} words"
        if op in ("delete", "replace"):
            return Edit(op, a, b + 1) if a <= b else f"span start {a} is after its end {b}"
        if op == "swap":
            if a == b:
                return "swap of a word with itself"
            return Edit("swap", min(a, b), min(a, b) + 1, max(a, b), max(a, b) + 1)
        if op == "move":
            return Edit("move", a, a + 1, b + 1)
        if op == "insert":
            return Edit("insert", a + 1, a + 1)
        if op == "rewrite":
            span = sentence_of(words, a)
            return Edit("rewrite", span.start, span.end, unit="sentence")
        if op == "split":
            return Edit("split", a + 1, a + 1, unit="sentence")
        span = sentence_of(words, a)  # merge: this sentence with the next
        return Edit("merge", span.end, span.end, unit="sentence")

    def _write_structured(self, edits: dict[int, Any], rngs: Sequence[np.random.Generator]) -> None:
        """Fill in the LM text of structured inserts, replaces and rewrites (one batch for all slots)."""
        pending: list[tuple[int, InfillRequest]] = []
        for slot, edit in edits.items():
            if not isinstance(edit, Edit) or edit.op not in ("insert", "replace", "rewrite") or edit.text:
                continue
            words = self.words[slot]
            if check_edit(words, replace(edit, text="x")) is not None:
                continue
            request = InfillRequest(
                join_words(words[: edit.start]),
                join_words(words[edit.end :]),
                join_words(words[edit.start : edit.end]),
                max_words=edit.end - edit.start + (4 if edit.op == "rewrite" else 1) + (edit.op == "insert"),
                sentence=edit.op == "rewrite",
            )
            pending.append((slot, request))
        texts = self.writer.write([r for _, r in pending], [rngs[slot] for slot, _ in pending])
        for (slot, _), text in zip(pending, texts):
            edits[slot] = replace(edits[slot], text=text)

    def _why_invalid(self, slot: int, edit: Edit | str) -> str | None:
        if isinstance(edit, str):
            return edit
        reason = check_edit(self.words[slot], edit)
        if reason is None:
            new = apply_edit(self.words[slot], edit)
            if len(new) > self.config.max_words or not self._fits([join_words(new)])[0]:
                reason = "the result is longer than the env's window"
        return reason

    def action_masks(self) -> np.ndarray:
        """(N, K + 1) bool in 'candidates' mode; (N, n_ops + 2 * max_words) per-dimension masks in 'structured'."""
        if self.config.action_mode == "candidates":
            masks = np.zeros((self.num_slots, self.config.num_actions), dtype=bool)
            masks[:, 0] = True
            for slot in range(self.num_slots):
                masks[slot, 1 : 1 + len(self.candidates[slot])] = True
            return masks
        width = self.config.max_words
        masks = np.zeros((self.num_slots, len(OPERATIONS) + 2 * width), dtype=bool)
        for slot in range(self.num_slots):
            n = len(self.words[slot])
            enabled = ["stop", *self.config.operations]
            if len(sentence_spans(self.words[slot])) < 2:
                enabled = [op for op in enabled if op != "merge"]
            masks[slot, [OPERATIONS.index(op) for op in enabled]] = True
            masks[slot, len(OPERATIONS) : len(OPERATIONS) + n] = True
            masks[slot, len(OPERATIONS) + width : len(OPERATIONS) + width + n] = True
        return masks

    # ------------------------------------------------------------------------------------------ observations
    def observation(self, slot: int) -> dict[str, np.ndarray]:
        """The observation of `slot` (fresh arrays)."""
        length = self.config.max_text_tokens
        ids, mask = left_padded([self.token_ids(self.text(slot))], length, self.pad_token_id)
        obs: dict[str, Any] = {
            "text_ids": ids[0],
            "text_mask": mask[0],
            "edits_left": np.int64(self.config.max_edits - self.edits[slot]),
        }
        if self.config.action_mode == "structured":
            obs["word_mask"] = (np.arange(self.config.max_words) < len(self.words[slot])).astype(np.int8)
            return obs
        rows = self.config.num_actions
        candidates = self.candidates[slot]
        results = [self.token_ids(self.text(slot))] + [self.token_ids(c.text) for c in candidates]
        results += [[]] * (rows - len(results))
        obs["candidate_ids"], obs["candidate_mask"] = left_padded(results, length, self.pad_token_id)
        ops = np.zeros(rows, dtype=np.int64)
        change = np.zeros(rows, dtype=np.float32)
        for i, candidate in enumerate(candidates, start=1):
            ops[i] = candidate.edit.op_id
            change[i] = len(candidate.words) - len(self.words[slot])
        obs["candidate_ops"], obs["candidate_word_change"] = ops, change
        obs["candidate_valid"] = self.action_masks()[slot].astype(np.int8)
        return obs

    def candidate_descriptions(self, slot: int) -> list[str]:
        """K + 1 strings: 'stop', each candidate's description, '' for empty slots."""
        names = ["stop"] + [describe(self.words[slot], c.edit) for c in self.candidates[slot]]
        return names + [""] * (self.config.num_actions - len(names))

    def info(self, slot: int, restarted: bool = False) -> dict[str, Any]:
        """The info dict of `slot` after its latest step or restart."""
        info: dict[str, Any] = {"prompt": self.prompts[slot], "draft": self.drafts[slot], "text": self.text(slot)}
        if self.config.action_mode == "candidates" and not self.done[slot]:
            info["candidates"] = self.candidate_descriptions(slot)
            info["candidate_texts"] = [c.text for c in self.candidates[slot]]
        if restarted:
            return info
        info["edit"] = self.last_edits[slot]
        info["edits"] = int(self.edits[slot])
        info["reward_components"] = dict(self.last_components[slot])
        if self.invalid[slot] is not None:
            info["invalid_action"] = self.invalid[slot]
        if self.stop_reasons[slot] is not None:
            info["stop_reason"] = self.stop_reasons[slot]
            info["episode_return"] = float(self.returns[slot])
        return info

    def render_text(self, slot: int = 0) -> str:
        """The draft, a word diff of the text, the candidates and the reward of `slot`."""
        return render_edit_text(
            self.drafts[slot],
            self.text(slot),
            self.candidate_descriptions(slot) if self.config.action_mode == "candidates" else [],
            self.last_edits[slot],
            float(self.last_rewards[slot]),
            float(self.returns[slot]),
            int(self.edits[slot]),
            self.config.max_edits,
            self.stop_reasons[slot],
        )
