"""`ToolEpisodes`: the tool calls of N episodes: finding a call that has just closed in a slot's completion, running
it, and the result tokens the env inserts after it (env tokens, never actions) with their reward components.

After every step the episode core (`textgen_env.episodes.EpisodeBatch`) calls `ToolEpisodes.run`: where a call
closed with the slot's latest action (`after_action`), the result's token ids are appended to the slot's token buffer
and marked as env-inserted, and the same episode goes on. Limits: `max_tool_calls` per episode (later calls get an
error result), `max_tool_result_tokens` per result (cut with a marker), `tool_timeout_s` per call, and the episode's
own `max_new_tokens`, which counts inserted tokens too (a result is cut so that the policy keeps at least one
action). A call that never closes changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase

from textgen_env.tools import ToolError, ToolRegistry, call_format_for

__all__ = ["TOOL_INFO_KEYS", "TRUNCATION_MARKER", "ToolCallRecord", "ToolEpisodes", "ToolInsert"]

TOOL_INFO_KEYS = (
    "tool_call",
    "env_tokens",
    "tool_calls",
    "tool_call_count",
    "tool_error_count",
    "tool_malformed_count",
)
"""The info entries of tool use (a shell that builds its own infos, like TextDialogue-v0's, copies them)."""

TRUNCATION_MARKER = " …[truncated]"
"""Appended to a tool result cut at `max_tool_result_tokens`."""


@dataclass
class ToolCallRecord:
    """One call of an episode, as ``info["tool_call"]`` and ``info["tool_calls"]`` report it."""

    name: str
    """The tool named by the call ("" when the call could not be parsed)."""
    arguments: dict[str, Any]
    """Its arguments ({} when the call could not be parsed)."""
    result: str
    """The text inserted after the call (the tool's output or the error message), before truncation."""
    error: str | None
    """Why the call failed (malformed, unknown tool, bad arguments, the tool raised, over a limit), or None."""
    seconds: float
    """Wall-clock time the tool took (under whatever load the machine has)."""
    token_index: int
    """Completion position of the action that closed the call."""
    inserted_tokens: int
    """Env tokens inserted after it."""
    malformed: bool = False
    """The call's text was not a valid call (bad JSON, no name, a closing tag without an opening one)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ToolInsert:
    """What `ToolEpisodes.after_action` asks the core to do for one slot."""

    token_ids: list[int]
    """Env tokens to append after the action."""
    record: ToolCallRecord
    rewards: dict[str, float]
    """Reward components of the call: ``tool_call`` (per call) and ``tool_error`` (per failed call)."""


class ToolEpisodes:
    """Per-slot tool-call state for `num_slots` episodes.

    Args:
        config: the env settings (`textgen_env.config.TextGenConfig`; its ``tools`` are already `Tool` instances).
        tokenizer: the env's tokenizer, which encodes the results.
        num_slots: N.
    """

    def __init__(self, config: Any, tokenizer: PreTrainedTokenizerBase, num_slots: int) -> None:
        self.config = config
        self.registry = ToolRegistry(config.tools)
        self.format = call_format_for(tokenizer, config.tool_format)
        self.tokenizer = tokenizer
        self.calls: list[list[ToolCallRecord]] = [[] for _ in range(num_slots)]
        self.scanned = [0] * num_slots  # per slot, the completion text position up to which calls were handled
        self._ids: dict[str, list[int]] = {}

    def reset(self, slot: int) -> None:
        self.calls[slot] = []
        self.scanned[slot] = 0

    def _encode(self, text: str) -> list[int]:
        ids = self._ids.get(text)
        if ids is None:
            ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            if len(self._ids) < 1000:
                self._ids[text] = ids
        return ids

    def after_action(self, slot: int, text: str, token_index: int, room: int) -> ToolInsert | None:
        """The result to insert when a call closed in `text` (the slot's completion) with its latest action.

        Args:
            slot: the slot.
            text: the completion so far, decoded.
            token_index: completion position of the latest action.
            room: tokens the episode may still hold (``max_new_tokens`` minus the completion's length).
        """
        found = self.format.find_call(text, self.scanned[slot])
        if found is None:
            return None
        self.scanned[slot] = found.end
        name, error, result, malformed = "", None, "", False
        arguments: dict[str, Any] = {}
        started = time.monotonic()
        try:
            name, arguments = self.format.parse(found.body)
        except ToolError as problem:
            error, malformed = str(problem), True
        if error is None and len(self.calls[slot]) >= self.config.max_tool_calls:
            error = f"Call limit reached: at most {self.config.max_tool_calls} tool calls per episode"
        if error is None:
            try:
                result = self.registry.get(name).call(arguments)
            except Exception as problem:  # a tool's failure is the call's result; the episode goes on
                error = f"{type(problem).__name__}: {problem}" if not isinstance(problem, ToolError) else str(problem)
        seconds = time.monotonic() - started
        if error is None and seconds > self.config.tool_timeout_s:  # an in-process tool cannot be stopped early
            error, result = f"Timed out: the tool took longer than tool_timeout_s={self.config.tool_timeout_s}", ""
        content = result if error is None else f"error: {error}"
        token_ids = self._result_tokens(content, room - 1)  # the policy keeps at least one more action
        record = ToolCallRecord(name, arguments, content, error, seconds, token_index, len(token_ids), malformed)
        self.calls[slot].append(record)
        rewards = {"tool_call": float(self.config.tool_call_reward)}
        rewards["tool_error"] = float(self.config.tool_error_reward) if error is not None else 0.0
        return ToolInsert(token_ids=token_ids, record=record, rewards=rewards)

    def run(self, batch: Any, rows: Any, result: Any) -> list[ToolInsert | None]:
        """Run the calls that closed with this step's actions in `batch` (an `EpisodeBatch`) and append their results
        to its token buffers as env tokens; the reward parts go into `result` (its `StepBatch`). Per slot, what was
        inserted (None where no call closed)."""
        inserts: list[ToolInsert | None] = [None] * batch.num_slots
        for row in rows.tolist():
            if batch.done[row]:
                continue  # the episode ended with this action: a call it closed is not run
            used = len(batch.completion_ids[row])
            insert = self.after_action(row, batch.completions[row], used - 1, batch.config.max_new_tokens - used)
            if insert is None:
                continue
            inserts[row] = insert
            k = len(insert.token_ids)
            if k:  # the buffer is left-padded: shift left by k, the result goes last
                batch.input_ids[row, :-k] = batch.input_ids[row, k:]
                batch.input_ids[row, -k:] = insert.token_ids
                batch.attention_mask[row, :-k] = batch.attention_mask[row, k:]
                batch.attention_mask[row, -k:] = 1
                batch.env_token_positions[row].extend(range(used, used + k))
                batch.completion_ids[row].extend(insert.token_ids)
                batch.completions[row] = batch._decode([batch.completion_ids[row]])[0]
            self.mark_scanned(row, len(batch.completions[row]))
            extra = sum(insert.rewards.values())
            result.rewards[row] += extra
            batch.last_rewards[row] += extra
            batch.returns[row] += extra
            batch.last_components[row] = {**batch.last_components[row], **insert.rewards}
        return inserts

    def _result_tokens(self, content: str, room: int) -> list[int]:
        """``result_open + content + result_close`` as token ids, the content cut to fit the limits (with a marker)."""
        opening, closing = self._encode(self.format.result_open), self._encode(self.format.result_close)
        body = self._encode(content)
        budget = min(self.config.max_tool_result_tokens, room) - len(opening) - len(closing)
        if budget <= 0:
            return []  # no room for a result: the call is recorded, nothing is inserted
        if len(body) > budget:
            marker = self._encode(TRUNCATION_MARKER)
            body = body[: max(budget - len(marker), 0)] + marker[:budget]
        return [*opening, *body, *closing]

    def mark_scanned(self, slot: int, position: int) -> None:
        """Calls end after `position` in the slot's text from now on (the inserted result is never parsed)."""
        self.scanned[slot] = max(self.scanned[slot], position)

    def info(self, slot: int, insert: ToolInsert | None, finished: bool) -> dict[str, Any]:
        """The tool entries of a step's info: the call that closed this step and, at the end, all of them."""
        info: dict[str, Any] = {}
        if insert is not None:
            info["tool_call"] = insert.record.to_dict()
            info["env_tokens"] = list(insert.token_ids)
        if finished:
            calls = self.calls[slot]
            info["tool_calls"] = [c.to_dict() for c in calls]
            info["tool_call_count"] = len(calls)
            info["tool_error_count"] = sum(c.error is not None for c in calls)
            info["tool_malformed_count"] = sum(c.malformed for c in calls)
        return info
