"""Prompt sources: where each episode's opening text comes from, sampled with the env's seeded generator.

A source is built from a list of strings, a ``.txt`` file (one prompt per line), a ``.jsonl`` file (objects with a
``prompt`` and optional ``references`` for reference-based rewards), a callable ``f(np_random) -> str``, or the name of
a built-in set written for this project (``"movie_reviews"``, ``"stories"``, ``"facts"``), optionally with a split:
``"movie_reviews:eval"`` (the default split is ``train``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Union

import numpy as np

__all__ = ["BUILTIN_PROMPT_SETS", "Prompt", "PromptSource", "PromptSpec", "make_prompt_source"]

BUILTIN_PROMPT_SETS: dict[str, str] = {
    "movie_reviews": "openings of movie reviews, sentiment-neutral (train 150 / eval 40)",
    "stories": "openings of short stories (train 150 / eval 40)",
    "facts": "starts of general-knowledge sentences with reference continuations (train 80 / eval 25)",
}
SPLITS = ("train", "eval")


@dataclass(frozen=True)
class Prompt:
    """One episode's prompt."""

    text: str
    """The opening text the model continues."""
    references: tuple[str, ...] = field(default=())
    """Reference continuations for reference-based rewards (BLEU, ROUGE, ...); may be empty."""


PromptSpec = Union[str, os.PathLike, Sequence[str], Callable[[np.random.Generator], str], "PromptSource"]


class PromptSource:
    """A fixed list of prompts, or a callable that makes one, sampled with the env's generator.

    Args:
        prompts: the prompts, when the source is a list.
        generate: a callable ``f(np_random) -> str``, when the source is a function.
        name: what to call the source in messages and ``repr``.
    """

    def __init__(
        self,
        prompts: Sequence[Prompt] | None = None,
        *,
        generate: Callable[[np.random.Generator], str] | None = None,
        name: str = "prompts",
    ) -> None:
        if (prompts is None) == (generate is None):
            raise ValueError("Expected exactly one of prompts or generate, got both or neither")
        self.prompts: tuple[Prompt, ...] = tuple(prompts or ())
        self.generate = generate
        self.name = name
        if prompts is not None and not self.prompts:
            raise ValueError(f"Expected at least one prompt in {name}, got an empty source")

    def __len__(self) -> int:
        """The number of prompts, or 0 for a callable source (unbounded)."""
        return len(self.prompts)

    def __repr__(self) -> str:
        kind = "callable" if self.generate else f"{len(self.prompts)} prompts"
        return f"PromptSource({self.name!r}, {kind})"

    def sample(self, np_random: np.random.Generator) -> Prompt:
        """One prompt, drawn uniformly (or made by the callable) with `np_random`."""
        if self.generate is not None:
            text = self.generate(np_random)
            if not isinstance(text, str):
                raise TypeError(f"Expected the prompts callable {self.name} to return a str, got {type(text).__name__}")
            return Prompt(text)
        return self.prompts[int(np_random.integers(len(self.prompts)))]


def _read_txt(path: Path) -> list[Prompt]:
    return [Prompt(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _read_jsonl(path: Path) -> list[Prompt]:
    prompts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"Expected a JSON object on line {number} of {path}, got invalid JSON: {error}") from None
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
            raise ValueError(f'Expected an object with a string "prompt" on line {number} of {path}, got {line[:80]!r}')
        references = record.get("references", ())
        if isinstance(references, str):
            references = (references,)
        prompts.append(Prompt(record["prompt"], tuple(str(r) for r in references)))
    return prompts


def _read_file(path: Path) -> PromptSource:
    if not path.is_file():
        raise FileNotFoundError(f"Expected prompts to be a readable .txt or .jsonl file, got {str(path)!r}")
    if path.suffix not in (".txt", ".jsonl"):
        raise ValueError(f"Expected a prompts file ending in .txt or .jsonl, got {path.name!r}")
    try:
        prompts = _read_jsonl(path) if path.suffix == ".jsonl" else _read_txt(path)
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"Expected a readable UTF-8 prompts file, got {str(path)!r}: {error}") from error
    if not prompts:
        raise ValueError(f"Expected at least one prompt in {str(path)!r}, got an empty file")
    return PromptSource(prompts, name=str(path))


def _builtin(spec: str) -> PromptSource:
    name, _, split = spec.partition(":")
    split = split or "train"
    if split not in SPLITS:
        raise ValueError(f"Expected a split in {SPLITS} for prompt set {name!r}, got {split!r}")
    folder = resources.files("textgen_env") / "data" / name
    for suffix in (".jsonl", ".txt"):
        entry = folder / f"{split}{suffix}"
        if entry.is_file():
            with resources.as_file(entry) as path:
                source = _read_file(Path(path))
            source.name = f"{name}:{split}"
            return source
    raise FileNotFoundError(f"Built-in prompt set {name!r} has no {split} split in the installed package")


def make_prompt_source(prompts: PromptSpec) -> PromptSource:
    """Build a `PromptSource` from any accepted form (see the module docstring).

    Raises:
        ValueError: an unknown built-in name (the message lists the valid names), an empty source or a bad line.
        FileNotFoundError: a path that does not exist.
        TypeError: a value of an unsupported type.
    """
    if isinstance(prompts, PromptSource):
        return prompts
    if isinstance(prompts, (str, os.PathLike)):
        text = os.fspath(prompts)
        if text.partition(":")[0] in BUILTIN_PROMPT_SETS:
            return _builtin(text)
        if text.endswith((".txt", ".jsonl")) or os.sep in text or Path(text).exists():
            return _read_file(Path(text))
        raise ValueError(
            f"Expected prompts to be a built-in set name ({', '.join(BUILTIN_PROMPT_SETS)}, optionally with "
            f"':train' or ':eval'), a .txt/.jsonl path, a list of strings or a callable, got {text!r}"
        )
    if callable(prompts):
        return PromptSource(generate=prompts, name=getattr(prompts, "__name__", "callable"))
    if isinstance(prompts, Sequence):
        items = list(prompts)
        if not items:
            raise ValueError("Expected prompts to hold at least one string, got an empty list")
        bad = [p for p in items if not isinstance(p, str)]
        if bad:
            raise TypeError(f"Expected prompts to be a list of str, got an item of type {type(bad[0]).__name__}")
        return PromptSource([Prompt(p) for p in items], name="list")
    raise TypeError(
        f"Expected prompts to be a str, path, list of str, callable or PromptSource, got {type(prompts).__name__}"
    )
