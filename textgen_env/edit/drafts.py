"""Where drafts come from: the built-in ``drafts`` set (train/eval), or any prompt source; checks and truncation.

The built-in set holds short movie-review and story drafts written for this project, with the flaws an editor
removes (repeated words, padding, run-on sentences): ``drafts`` (30, the train split) and ``drafts:eval`` (15).
Any other spec goes to `textgen_env.prompts.make_prompt_source` (lists, files, callables, built-in prompt sets).
"""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

from textgen_env.prompts import PromptSource, PromptSpec, _read_file, make_prompt_source

__all__ = ["BUILTIN_DRAFTS", "checked_draft", "make_draft_source"]

BUILTIN_DRAFTS = "drafts"


def make_draft_source(spec: PromptSpec) -> PromptSource:
    """The source of drafts (or of prompts, for generated drafts) for `spec`."""
    if isinstance(spec, str) and spec.partition(":")[0] == BUILTIN_DRAFTS:
        split = spec.partition(":")[2] or "train"
        if split not in ("train", "eval"):
            raise ValueError(f"Expected a split in ('train', 'eval') for the drafts set, got {split!r}")
        with resources.as_file(resources.files("textgen_env.edit") / "data" / f"{split}.txt") as path:
            source = _read_file(Path(path))
        source.name = f"{BUILTIN_DRAFTS}:{split}"
        return source
    return make_prompt_source(spec)


def checked_draft(text: object, max_words: int, count_tokens, max_tokens: int) -> str:
    """`text` as a draft: a non-empty str, cut (with a warning) to `max_words` words and `max_tokens` tokens.

    Args:
        count_tokens: ``count_tokens(text) -> int``, the env tokenizer's token count.
    """
    if not isinstance(text, str):
        raise TypeError(f"Expected the draft to be a str, got {type(text).__name__} {text!r}")
    words = text.split()
    if not words:
        raise ValueError(f"Expected a non-empty draft, got {text!r}")
    cut = min(len(words), max_words)
    while cut > 1 and count_tokens(" ".join(words[:cut])) > max_tokens:
        cut -= 1
    if cut < len(words):
        warnings.warn(
            f"Draft of {len(words)} words is longer than the env's window (max_words={max_words}, "
            f"max_text_tokens={max_tokens}); keeping its first {cut} words: {text[:40]!r}...",
            stacklevel=3,
        )
    return " ".join(words[:cut])
