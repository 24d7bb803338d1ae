"""The `search` tool: BM25 retrieval (rank-bm25's Okapi BM25) over a local corpus, returning the top passages.

A corpus is a JSONL file (one object per line with ``text`` and an optional ``title``), a folder of ``.txt`` and
``.md`` files (each split into paragraphs at blank lines, titled with the file name), or a list of strings. The
built-in ``facts`` corpus (``textgen_env/data/search/facts.jsonl``) has short encyclopedic passages written for
this package (planets, elements, countries, inventions, animals, units), the default.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from gymnasium.error import DependencyNotInstalled

from textgen_env.tools.base import Tool, ToolError
from textgen_env.validation import check_int

__all__ = ["BUILTIN_CORPORA", "Passage", "SearchIndex", "load_corpus", "search_tool"]

BUILTIN_CORPORA = ("facts",)
"""Names of the corpora shipped with the package."""
_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Passage:
    """One retrievable passage."""

    title: str
    text: str


CorpusSpec = str | os.PathLike[str] | Sequence[str]


def load_corpus(corpus: CorpusSpec) -> list[Passage]:
    """The passages of `corpus`: a built-in name, a ``.jsonl`` file, a folder of ``.txt``/``.md`` files, or strings."""
    if isinstance(corpus, str) and corpus in BUILTIN_CORPORA:
        source = resources.files("textgen_env") / "data" / "search" / f"{corpus}.jsonl"
        return _jsonl_passages(source.read_text(encoding="utf-8"), corpus)
    if isinstance(corpus, (str, os.PathLike)):
        path = Path(corpus)
        if path.is_dir():
            passages = []
            for file in sorted([*path.rglob("*.txt"), *path.rglob("*.md")]):
                for paragraph in re.split(r"\n\s*\n", file.read_text(encoding="utf-8")):
                    if paragraph.strip():
                        passages.append(Passage(file.stem, " ".join(paragraph.split())))
            if not passages:
                raise ValueError(f"Expected .txt or .md files with text in the corpus folder {path}, got none")
            return passages
        if path.suffix == ".jsonl" and path.is_file():
            return _jsonl_passages(path.read_text(encoding="utf-8"), str(path))
        raise ValueError(
            f"Expected a corpus name in {BUILTIN_CORPORA}, a .jsonl file or a folder, got {os.fspath(corpus)!r}"
        )
    if isinstance(corpus, Sequence) and corpus and all(isinstance(t, str) and t.strip() for t in corpus):
        return [Passage("", text) for text in corpus]
    raise ValueError(f"Expected a corpus name, path or a non-empty list of non-empty strings, got {corpus!r}")


def _jsonl_passages(text: str, where: str) -> list[Passage]:
    passages = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"Expected JSON on line {number} of {where}, got {line[:60]!r} ({error.msg})") from None
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not item["text"].strip():
            raise ValueError(
                f"Expected an object with a non-empty 'text' on line {number} of {where}, got {line[:60]!r}"
            )
        passages.append(Passage(str(item.get("title", "")), item["text"]))
    if not passages:
        raise ValueError(f"Expected at least one passage in {where}, got none")
    return passages


class SearchIndex:
    """A BM25 index over passages; `search` returns the best `top_k` with a positive score."""

    def __init__(self, corpus: CorpusSpec = "facts", *, top_k: int = 2) -> None:
        try:
            from rank_bm25 import BM25Okapi
        except ImportError as error:
            message = 'The search tool needs rank-bm25. Run: pip install "textgen-env[tools]"'
            raise DependencyNotInstalled(message) from error
        check_int("top_k", top_k, 1)
        self.passages = load_corpus(corpus)
        self.top_k = top_k
        words = [_words(f"{p.title} {p.text}") or ["_"] for p in self.passages]
        self._vocabularies = [set(w) for w in words]
        self._bm25 = BM25Okapi(words)

    def search(self, query: str) -> list[Passage]:
        """The passages that share a word with `query`, best BM25 score first (ties: corpus order)."""
        if not isinstance(query, str) or not _words(query):
            raise ToolError(f"Expected a query with at least one word, got {query!r}")
        terms = _words(query)
        scores = self._bm25.get_scores(terms)
        matching = [i for i, vocabulary in enumerate(self._vocabularies) if vocabulary.intersection(terms)]
        order = sorted(matching, key=lambda i: (-scores[i], i))[: self.top_k]
        return [self.passages[i] for i in order]

    def __call__(self, query: str) -> str:
        found = self.search(query)
        if not found:
            return "no results"
        return "\n".join(f"[{p.title}] {p.text}" if p.title else p.text for p in found)


def search_tool(corpus: CorpusSpec = "facts", *, top_k: int = 2) -> Tool:
    """The built-in ``search`` tool over `corpus` (argument ``query``)."""
    return Tool(
        name="search",
        description="Searches a small encyclopedia and returns the best matching passages.",
        parameters={
            "type": "object",
            "properties": {"query": {"type": "string", "description": "a few keywords"}},
            "required": ["query"],
        },
        fn=SearchIndex(corpus, top_k=top_k),
    )
