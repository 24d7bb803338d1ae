"""The Python code blocks of the README and the docs pages run, with the tiny offline model standing in for the
embedded default.

Conventions for README.md and docs/**/*.md:

* every fenced ```python block is one test case, run with `exec` in a fresh namespace (so each block carries its
  own imports) inside a temporary working directory;
* a block whose fence comes right after a line ``<!-- no-test -->`` (blank lines between are allowed) is skipped:
  mark code that cannot run offline that way, and say why in the page's text;
* a block right after a line ``<!-- slow -->`` runs as a ``slow`` test (more than a few seconds);
* blocks in other languages (```bash and the like) are never run.

The model is made tiny without changing any package code: in every module of `textgen_env` and `agents`, the
bindings of `load_model`, `load_tokenizer` and `model_vocabulary_rows` are patched so that asking for the default
model (``None``, ``"default"`` or its name) gives the tiny GPT-2, tokenizer and vocabulary size of
`textgen_env.testing`; any other name goes to the real function.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from transformers import PreTrainedTokenizerBase

import agents
import textgen_env
from textgen_env import models
from textgen_env.testing import tiny_model, tiny_tokenizer

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
NO_TEST = "<!-- no-test -->"
SLOW = "<!-- slow -->"
FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
PATCHED = ("load_model", "load_tokenizer", "model_vocabulary_rows")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced Python block of a Markdown file."""

    line: int
    """Line number (1-based) of the block's first line of code."""
    source: str
    skip: bool
    """Whether the block is marked ``<!-- no-test -->``."""
    slow: bool = False
    """Whether the block is marked ``<!-- slow -->``."""
    path: Path = README
    """The Markdown file it is in."""


def python_blocks(markdown: str, path: Path = README) -> list[CodeBlock]:
    """The ```python blocks of `markdown` (the text of `path`), in order."""
    blocks = []
    for match in FENCE.finditer(markdown):
        if match.group(1).lower() not in ("python", "py"):
            continue
        preceding = markdown[: match.start()].rstrip().splitlines()
        mark = preceding[-1].strip() if preceding else ""
        line = markdown.count("\n", 0, match.start()) + 2
        blocks.append(CodeBlock(line, match.group(2), skip=mark == NO_TEST, slow=mark == SLOW, path=path))
    return blocks


BLOCKS = [block for page in PAGES for block in python_blocks(page.read_text(encoding="utf-8"), page)]
README_BLOCKS = [block for block in BLOCKS if block.path == README]


def _is_default(name_or_path: Any) -> bool:
    return name_or_path is None or (
        isinstance(name_or_path, str) and name_or_path.lower() in ("default", models.DEFAULT_MODEL.lower())
    )


def _package_modules() -> list[ModuleType]:
    modules = []
    for package in (textgen_env, agents):
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            modules.append(importlib.import_module(info.name))
    return modules


@pytest.fixture
def tiny_default_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the default model the tiny offline GPT-2 everywhere the packages look it up."""
    real = {name: getattr(models, name) for name in PATCHED}

    def load_model(name_or_path=None, *, tokenizer=None, device="cpu", **kwargs):
        if not _is_default(name_or_path):
            return real["load_model"](name_or_path, tokenizer=tokenizer, device=device, **kwargs)
        if not isinstance(tokenizer, PreTrainedTokenizerBase):
            tokenizer = tiny_tokenizer()
        return tiny_model(len(tokenizer)).to(device), tokenizer

    def load_tokenizer(name_or_path=None, **kwargs):
        return tiny_tokenizer() if _is_default(name_or_path) else real["load_tokenizer"](name_or_path, **kwargs)

    def model_vocabulary_rows(name_or_path, **kwargs):
        if _is_default(name_or_path):
            return len(tiny_tokenizer())
        return real["model_vocabulary_rows"](name_or_path, **kwargs)

    fakes = {"load_model": load_model, "load_tokenizer": load_tokenizer, "model_vocabulary_rows": model_vocabulary_rows}
    patched = set()
    for module in _package_modules():
        for name in PATCHED:
            if getattr(module, name, None) is real[name]:
                monkeypatch.setattr(module, name, fakes[name])
                patched.add(f"{module.__name__}.{name}")
    # the env and the agents must be covered, or a block would load the real default model
    assert {"textgen_env.episodes.load_model", "agents.base.load_model"} <= patched, sorted(patched)


def test_python_blocks_are_found_and_no_test_marks_skip() -> None:
    markdown = "\n".join(
        [
            "# Title",
            "```python",
            "a = 1",
            "```",
            "<!-- no-test -->",
            "",
            "```python",
            "b = 2",
            "```",
            "```bash",
            "echo hi",
            "```",
            "```py",
            "c = 3",
            "```",
        ]
    )
    markdown += "\n<!-- slow -->\n```python\nd = 4\n```"
    found = [(block.line, block.source, block.skip, block.slow) for block in python_blocks(markdown)]
    assert found == [
        (3, "a = 1\n", False, False),
        (8, "b = 2\n", True, False),
        (14, "c = 3\n", False, False),
        (18, "d = 4\n", False, True),
    ]


def test_readme_and_docs_have_python_blocks() -> None:
    assert README_BLOCKS, f"Expected ```python blocks in {README}, found none"
    assert len(BLOCKS) > len(README_BLOCKS), "Expected ```python blocks in the docs pages, found none"


def _name(block: CodeBlock) -> str:
    return f"{block.path.relative_to(ROOT)}:{block.line}"


@pytest.mark.parametrize(
    "block",
    [pytest.param(block, marks=pytest.mark.slow) if block.slow else block for block in BLOCKS],
    ids=[_name(block) for block in BLOCKS],
)
def test_readme_block_runs(block: CodeBlock, tiny_default_model, tmp_path, monkeypatch) -> None:
    if block.skip:
        pytest.skip(f"marked {NO_TEST} in {block.path.name}")
    monkeypatch.chdir(tmp_path)  # blocks may write files (checkpoints, logs)
    torch.manual_seed(0)
    # leading newlines make tracebacks name the block's own lines of its file
    code = compile("\n" * (block.line - 1) + block.source, str(block.path), "exec")
    failure = None
    try:
        exec(code, {"__name__": "__readme__"})
    except Exception:
        failure = traceback.format_exc()
    if failure is not None:
        pytest.fail(f"The block at {_name(block)} failed:\n{failure}", pytrace=False)
