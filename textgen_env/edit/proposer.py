"""The candidate proposer: a cheap enumerator of edit spans, LM text for the edits that need it, K distinct results.

A step's proposal has two phases so that the LM text of every slot is sampled in one batch: `plan` enumerates the
span edits of a text (deletes, swaps, moves, splits, merges over the configured units) and picks the LM edits
(inserts, replaces, rewrites) whose text the env's LM must write; `finish` fills that text in and keeps K edits with
distinct results, the operations mixed round-robin in a random order (drawn from the env's ``np_random``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import cast

import numpy as np

from textgen_env.edit.config import TextEditConfig
from textgen_env.edit.infill import InfillRequest
from textgen_env.edit.operations import (
    LM_OPERATIONS,
    Edit,
    Unit,
    apply_edit,
    check_edit,
    join_words,
    sentence_spans,
    unit_spans,
)

__all__ = ["Candidate", "CandidateProposer", "Plan"]

_SPLIT_BEFORE = frozenset({"and", "but", "so", "because", "which", "while", "although", "then"})
_MOVE_RANGE = 2  # a word moves at most this many words away; phrases and sentences anywhere


@dataclass(frozen=True)
class Candidate:
    """A proposed edit and the text it gives."""

    edit: Edit
    words: tuple[str, ...]

    @property
    def text(self) -> str:
        return join_words(list(self.words))


@dataclass
class Plan:
    """One slot's proposal in progress: its span edits and the LM edits awaiting text."""

    words: list[str]
    cheap: list[Edit]
    lm_edits: list[Edit] = field(default_factory=list)
    requests: list[InfillRequest] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    """Operations in the random order in which the round-robin takes them."""


def _round_robin(groups: dict[str, list[Edit]], order: Sequence[str]) -> list[Edit]:
    out, index = [], 0
    queues = {op: list(groups.get(op, ())) for op in order}
    while any(queues.values()):
        op = order[index % len(order)]
        if queues[op]:
            out.append(queues[op].pop(0))
        index += 1
    return out


class CandidateProposer:
    """Proposes up to K distinct edits of a text (see the module docstring).

    Args:
        config: the env settings (operations, units, K, lm_share, max_words).
        fits: ``fits(texts) -> list[bool]``, whether each text fits the env's token window.
    """

    def __init__(self, config: TextEditConfig, fits: Callable[[list[str]], list[bool]]) -> None:
        self.config = config
        self.fits = fits
        self.cheap_ops = [op for op in config.operations if op not in LM_OPERATIONS]
        self.lm_ops = [op for op in config.operations if op in LM_OPERATIONS]

    def span_edits(self, words: list[str]) -> list[Edit]:
        """Every delete, swap, move, split and merge of `words` over the configured units."""
        edits: list[Edit] = []
        n = len(words)
        for unit in cast(Sequence[Unit], self.config.units):  # EditConfig kept only UNITS
            spans = unit_spans(words, unit)
            for i, span in enumerate(spans):
                edits.append(Edit("delete", span.start, span.end, unit=unit))
                if i + 1 < len(spans):
                    other = spans[i + 1]
                    edits.append(Edit("swap", span.start, span.end, other.start, other.end, unit=unit))
                targets = [s.start for s in spans] + [n]
                if unit == "word":
                    targets = [t for t in targets if abs(t - span.start) <= _MOVE_RANGE]
                for target in targets:
                    edits.append(Edit("move", span.start, span.end, target, unit=unit))
        for s in range(1, n):
            if words[s - 1].endswith((",", ";", ":")) or words[s].lower() in _SPLIT_BEFORE:
                edits.append(Edit("split", s, s, unit="sentence"))
        for span in sentence_spans(words)[1:]:
            edits.append(Edit("merge", span.start, span.start, unit="sentence"))
        return [e for e in edits if e.op in self.cheap_ops and check_edit(words, e) is None]

    def lm_edits(self, words: list[str]) -> list[tuple[Edit, InfillRequest]]:
        """Every insert, replace and rewrite position of `words`, with the request for its text."""
        out: list[tuple[Edit, InfillRequest]] = []
        n = len(words)
        for unit in cast(Sequence[Unit], self.config.units):  # EditConfig kept only UNITS
            spans = unit_spans(words, unit)
            if unit != "sentence" and "insert" in self.lm_ops:
                for start in [s.start for s in spans] + [n]:
                    request = InfillRequest(join_words(words[:start]), join_words(words[start:]), "", 2)
                    out.append((Edit("insert", start, start, unit=unit), request))
            for span in spans:
                before, after = join_words(words[: span.start]), join_words(words[span.end :])
                old = join_words(words[span.start : span.end])
                if unit == "sentence" and "rewrite" in self.lm_ops:
                    request = InfillRequest(before, after, old, span.end - span.start + 4, sentence=True)
                    out.append((Edit("rewrite", span.start, span.end, unit=unit), request))
                elif unit != "sentence" and "replace" in self.lm_ops:
                    request = InfillRequest(before, after, old, span.end - span.start + 1)
                    out.append((Edit("replace", span.start, span.end, unit=unit), request))
        return out

    def plan(self, words: list[str], np_random: np.random.Generator) -> Plan:
        """Enumerate the span edits and pick the LM edits of `words` (their requests are in the plan)."""
        k = self.config.num_candidates
        plan = Plan(list(words), self.span_edits(words))
        ops = list(self.config.operations)
        plan.order = [ops[i] for i in np_random.permutation(len(ops))]
        lm = self.lm_edits(words) if self.lm_ops else []
        wanted = round(k * self.config.lm_share) if self.cheap_ops else k
        if lm and wanted:
            groups: dict[str, list[Edit]] = {}
            by_edit = dict(lm)
            for i in np_random.permutation(len(lm)):
                groups.setdefault(lm[i][0].op, []).append(lm[i][0])
            chosen = _round_robin(groups, [op for op in plan.order if op in LM_OPERATIONS])[: wanted + 2]
            plan.lm_edits = chosen
            plan.requests = [by_edit[e] for e in chosen]  # a little extra, for texts that come out empty or equal
        return plan

    def finish(self, plan: Plan, texts: Sequence[str], np_random: np.random.Generator) -> list[Candidate]:
        """Up to K candidates with distinct results (none equal to the text), LM edits first up to their share."""
        k, words = self.config.num_candidates, plan.words
        lm = [replace(edit, text=text) for edit, text in zip(plan.lm_edits, texts)]
        groups: dict[str, list[Edit]] = {}
        for i in np_random.permutation(len(plan.cheap)):
            groups.setdefault(plan.cheap[i].op, []).append(plan.cheap[i])
        cheap = _round_robin(groups, [op for op in plan.order if op not in LM_OPERATIONS])
        wanted = round(k * self.config.lm_share) if cheap else k
        ordered = [e for e in lm if check_edit(words, e) is None]
        ordered = ordered[:wanted] + cheap + ordered[wanted:]
        seen = {tuple(words)}
        picked: list[Candidate] = []
        for edit in ordered:
            result = tuple(apply_edit(words, edit))
            if result in seen or len(result) > self.config.max_words:
                continue
            seen.add(result)
            picked.append(Candidate(edit, result))
            if len(picked) == 2 * k:
                break
        fitting = self.fits([c.text for c in picked])
        return [c for c, ok in zip(picked, fitting) if ok][:k]
