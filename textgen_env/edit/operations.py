"""Units of a draft (words, phrases, sentences) and the edit operations over them, as pure functions on word lists.

A draft is kept as its whitespace-separated words; punctuation stays attached to its word (``"great."``), so joining
the words with spaces gives the text back. A *sentence* ends at a word ending in ``.``, ``!`` or ``?``; a *phrase*
is a clause (ended by ``,``, ``;``, ``:`` or a sentence end), cut into pieces of at most `MAX_PHRASE_WORDS` words.

>>> words = split_words("The film was very very long. I liked it, mostly.")
>>> join_words(apply_edit(words, Edit("delete", 3, 4)))
'The film was very long. I liked it, mostly.'
>>> join_words(apply_edit(words, Edit("merge", 6, 6)))
'The film was very very long, I liked it, mostly.'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "LM_OPERATIONS",
    "MAX_PHRASE_WORDS",
    "OPERATIONS",
    "UNITS",
    "Edit",
    "Span",
    "apply_edit",
    "check_edit",
    "describe",
    "join_words",
    "phrase_spans",
    "sentence_of",
    "sentence_spans",
    "split_words",
    "unit_spans",
]

OPERATIONS: tuple[str, ...] = ("stop", "delete", "insert", "replace", "swap", "move", "rewrite", "split", "merge")
"""Every operation, in the order of their ids (``candidate_ops`` in the observation, the first structured action)."""
LM_OPERATIONS = frozenset({"insert", "replace", "rewrite"})
"""The operations whose new text the env's language model writes."""
UNITS = ("word", "phrase", "sentence")
MAX_PHRASE_WORDS = 4
_SENTENCE_END = (".", "!", "?")
_CLAUSE_END = (",", ";", ":")

Unit = Literal["word", "phrase", "sentence"]


@dataclass(frozen=True)
class Span:
    """Words ``[start, end)`` of a draft."""

    start: int
    end: int


@dataclass(frozen=True)
class Edit:
    """One edit: an operation over word spans. Which fields matter depends on `op`:

    * ``delete``/``replace``/``rewrite``: words ``[start, end)`` are removed (replaced by `text`);
    * ``insert``: `text` goes in before word `start` (``start == len(words)`` appends);
    * ``swap``: spans ``[start, end)`` and ``[target, target_end)`` (``end <= target``) trade places;
    * ``move``: span ``[start, end)`` moves before word `target` (outside the span; ``len(words)`` = to the end);
    * ``split``: a sentence ends after word ``start - 1``; ``merge``: the sentence that word ``start - 1`` ends
      joins the next one (``end`` is unused for both);
    * ``stop``: no change.
    """

    op: str
    start: int = 0
    end: int = 0
    target: int = 0
    target_end: int = 0
    text: str = ""
    unit: Unit = "word"

    @property
    def op_id(self) -> int:
        """Index of `op` in `OPERATIONS`."""
        return OPERATIONS.index(self.op)


def split_words(text: str) -> list[str]:
    """The whitespace-separated words of `text`."""
    return text.split()


def join_words(words: list[str]) -> str:
    """The text of `words`."""
    return " ".join(words)


def _ends_sentence(word: str) -> bool:
    return word.endswith(_SENTENCE_END)


def sentence_spans(words: list[str]) -> list[Span]:
    """The sentences of `words`; trailing words without an end mark form the last sentence."""
    spans, start = [], 0
    for i, word in enumerate(words):
        if _ends_sentence(word):
            spans.append(Span(start, i + 1))
            start = i + 1
    if start < len(words):
        spans.append(Span(start, len(words)))
    return spans


def sentence_of(words: list[str], index: int) -> Span:
    """The sentence that contains word `index`."""
    for span in sentence_spans(words):
        if span.start <= index < span.end:
            return span
    raise IndexError(f"Expected a word index in [0, {len(words)}), got {index}")


def phrase_spans(words: list[str]) -> list[Span]:
    """Clauses of `words`, each cut into pieces of at most `MAX_PHRASE_WORDS` words."""
    spans, start = [], 0
    for i, word in enumerate(words):
        if word.endswith(_CLAUSE_END + _SENTENCE_END) or i == len(words) - 1:
            for piece in range(start, i + 1, MAX_PHRASE_WORDS):
                spans.append(Span(piece, min(piece + MAX_PHRASE_WORDS, i + 1)))
            start = i + 1
    return spans


def unit_spans(words: list[str], unit: Unit) -> list[Span]:
    """The spans of one unit kind."""
    if unit == "word":
        return [Span(i, i + 1) for i in range(len(words))]
    if unit == "phrase":
        return phrase_spans(words)
    if unit == "sentence":
        return sentence_spans(words)
    raise ValueError(f"Expected unit to be one of {list(UNITS)}, got {unit!r}")


def _capitalized(word: str) -> str:
    return word[:1].upper() + word[1:]


def _lowered(word: str) -> str:
    return word if word == "I" or word.startswith("I'") else word[:1].lower() + word[1:]


def apply_edit(words: list[str], edit: Edit) -> list[str]:
    """The words after `edit` (a new list; `words` is not changed). Assumes a valid edit (see `check_edit`)."""
    s, e, t, te = edit.start, edit.end, edit.target, edit.target_end
    new = split_words(edit.text)
    if edit.op == "stop":
        return list(words)
    if edit.op == "delete":
        return words[:s] + words[e:]
    if edit.op in ("replace", "rewrite"):
        return words[:s] + new + words[e:]
    if edit.op == "insert":
        return words[:s] + new + words[s:]
    if edit.op == "swap":
        return words[:s] + words[t:te] + words[e:t] + words[s:e] + words[te:]
    if edit.op == "move":
        span, rest = words[s:e], words[:s] + words[e:]
        at = t if t < s else t - (e - s)
        return rest[:at] + span + rest[at:]
    if edit.op == "split":  # a lone mark ("good , and") becomes the new one ("good . And")
        return [*words[: s - 1], words[s - 1].rstrip(",;:") + ".", _capitalized(words[s]), *words[s + 1 :]]
    if edit.op == "merge":
        return [*words[: s - 1], words[s - 1].rstrip(".!?") + ",", _lowered(words[s]), *words[s + 1 :]]
    raise ValueError(f"Expected op to be one of {list(OPERATIONS)}, got {edit.op!r}")


def check_edit(words: list[str], edit: Edit) -> str | None:
    """Why `edit` cannot apply to `words` (a short reason), or None when it can."""
    n, s, e, t, te = len(words), edit.start, edit.end, edit.target, edit.target_end
    if edit.op not in OPERATIONS:
        return f"unknown op {edit.op!r}"
    if edit.op == "stop":
        return None
    if edit.op in ("delete", "replace", "rewrite"):
        if not 0 <= s < e <= n:
            return f"span [{s}, {e}) is not inside the {n} words"
        if edit.op == "delete" and e - s == n:
            return "it would delete every word"
        if edit.op != "delete" and not edit.text.strip():
            return "the new text is empty"
        return None
    if edit.op == "insert":
        if not 0 <= s <= n:
            return f"position {s} is not in [0, {n}]"
        return None if edit.text.strip() else "the new text is empty"
    if edit.op == "swap":
        return None if 0 <= s < e <= t < te <= n else f"spans [{s}, {e}) and [{t}, {te}) do not follow each other"
    if edit.op == "move":
        if not 0 <= s < e <= n or not 0 <= t <= n or s <= t <= e:
            return f"span [{s}, {e}) cannot move to {t}"
        return None
    if edit.op == "split":
        if not 0 < s < n or _ends_sentence(words[s - 1]):
            return f"no sentence continues past word {s - 1}"
        return None
    if not 0 < s < n or not _ends_sentence(words[s - 1]):  # merge
        return f"no sentence ends at word {s - 1} before another starts"
    return None


def describe(words: list[str], edit: Edit) -> str:
    """A one-line description, e.g. ``delete 'very'`` or ``swap 'a b' <-> 'c'``."""

    def quoted(a: int, b: int) -> str:
        return repr(join_words(words[a:b]))

    if edit.op == "stop":
        return "stop"
    if edit.op == "delete":
        return f"delete {quoted(edit.start, edit.end)}"
    if edit.op in ("replace", "rewrite"):
        return f"{edit.op} {quoted(edit.start, edit.end)} -> {edit.text!r}"
    if edit.op == "insert":
        where = f"before {quoted(edit.start, edit.start + 1)}" if edit.start < len(words) else "at the end"
        return f"insert {edit.text!r} {where}"
    if edit.op == "swap":
        return f"swap {quoted(edit.start, edit.end)} <-> {quoted(edit.target, edit.target_end)}"
    if edit.op == "move":
        where = f"before {quoted(edit.target, edit.target + 1)}" if edit.target < len(words) else "to the end"
        return f"move {quoted(edit.start, edit.end)} {where}"
    return f"{edit.op} at {quoted(edit.start - 1, edit.start + 1)}"
