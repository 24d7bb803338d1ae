"""Text rendering of an edit episode: the draft, the current text as a word diff, the candidates and the reward.

>>> word_diff("the film was very long", "the film was long.")
'the film was [-very long-] {+long.+}'
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

__all__ = ["render_edit_text", "word_diff"]


def word_diff(old: str, new: str) -> str:
    """`new` against `old` word by word: removed words as ``[-...-]``, added ones as ``{+...+}``."""
    a, b = old.split(), new.split()
    parts: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            parts.extend(a[i1:i2])
            continue
        if i2 > i1:
            parts.append("[-" + " ".join(a[i1:i2]) + "-]")
        if j2 > j1:
            parts.append("{+" + " ".join(b[j1:j2]) + "+}")
    return " ".join(parts)


def render_edit_text(
    draft: str,
    text: str,
    candidates: Sequence[str],
    last_edit: str,
    last_reward: float,
    episode_return: float,
    edits: int,
    max_edits: int,
    stop_reason: str | None,
) -> str:
    """The text that ``render()`` returns in 'ansi' mode (and prints in 'human' mode)."""
    status = f" [done: {stop_reason}]" if stop_reason else ""
    lines = [
        f"Draft:  {draft}",
        f"Text:   {word_diff(draft, text)}",
        f"Edit:   {last_edit or '-'}",
        f"Reward: last {last_reward:+.4f} | return {episode_return:+.4f} | edits {edits}/{max_edits}{status}",
    ]
    if candidates and not stop_reason:
        lines.append("Candidates: " + " | ".join(f"{i}: {c}" for i, c in enumerate(candidates) if c))
    return "\n".join(lines) + "\n"
