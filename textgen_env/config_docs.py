"""Argument tables generated from the config dataclasses' field docstrings, for the env classes' docstrings.

A setting is documented once, as the docstring under its dataclass field (`TextGenConfig`, `DialogueConfig`,
`TextEditConfig`). `argument_table` turns the fields into a Markdown table and `document_arguments` puts that table
into an env class's docstring at import, in place of the line ``{arguments}``; `textgen_env.readme_tables` gives
the same tables to the docs pages. The agents' command line (`agents.app.options`) reads its flags' help and the
docs' flag table with the same `field_docs` and `markdown_table`.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = [
    "ARGUMENTS_MARKER",
    "argument_rows",
    "argument_table",
    "document_arguments",
    "documented_table",
    "field_docs",
    "markdown_table",
]

ARGUMENTS_MARKER = "{arguments}"
"""The line of an env docstring that `document_arguments` replaces with the argument table."""
_TABLES: dict[type, str] = {}  # env class -> the argument table `document_arguments` put into its docstring

_Class = TypeVar("_Class", bound=type)


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the docstring under it in the dataclass source (whitespace collapsed), over `cls` and its bases.

    A class whose source cannot be read (a frozen application) contributes no docstrings.
    """
    docs: dict[str, str] = {}
    for klass in reversed([k for k in cls.__mro__ if dataclasses.is_dataclass(k)]):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body  # type: ignore[attr-defined]  # tree.body[0] is the ClassDef getsource gave
        for node, following in itertools.pairwise(body):
            is_doc = isinstance(following, ast.Expr) and isinstance(getattr(following, "value", None), ast.Constant)
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and is_doc:
                docs[node.target.id] = " ".join(str(following.value.value).split())
    return docs


def markdown_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A Markdown table (pipes in cells escaped)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def argument_rows(config: type, exclude: Sequence[str] = ()) -> list[tuple[str, str, str]]:
    """(`name`, `default`, meaning) for each field of dataclass `config`, in declaration order."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"Expected a dataclass, got {config!r}")
    docs = field_docs(config)
    rows = []
    for f in dataclasses.fields(config):
        if f.name in exclude:
            continue
        if f.default is not dataclasses.MISSING:
            default = f"`{f.default!r}`"
        elif f.default_factory is not dataclasses.MISSING:
            default = f"`{f.default_factory()!r}`"
        else:
            default = "required"
        rows.append((f"`{f.name}`", default, docs.get(f.name, "")))
    return rows


def argument_table(config: type, exclude: Sequence[str] = (), extra_rows: Sequence[tuple[str, str, str]] = ()) -> str:
    """The Markdown table of `config`'s arguments (see `argument_rows`), then `extra_rows`."""
    return markdown_table([*argument_rows(config, exclude), *extra_rows], ("argument", "default", "meaning"))


def document_arguments(table: str) -> Callable[[_Class], _Class]:
    """Class decorator: the docstring's line ``{arguments}`` becomes `table` (indented like that line).

    The table is also kept for `documented_table` (the docs pages' copy); under ``python -OO`` there is no docstring.
    """

    def decorate(cls: _Class) -> _Class:
        _TABLES[cls] = table
        if cls.__doc__ is None:
            return cls
        lines = cls.__doc__.split("\n")
        marked = [i for i, line in enumerate(lines) if line.strip() == ARGUMENTS_MARKER]
        if len(marked) != 1:
            raise ValueError(f"Expected one {ARGUMENTS_MARKER} line in {cls.__name__}'s docstring, got {len(marked)}")
        indent = lines[marked[0]][: len(lines[marked[0]]) - len(lines[marked[0]].lstrip())]
        lines[marked[0] : marked[0] + 1] = [indent + row for row in table.split("\n")]
        cls.__doc__ = "\n".join(lines)
        return cls

    return decorate


def documented_table(cls: type) -> str:
    """The argument table that `document_arguments` put into `cls`'s docstring."""
    if cls not in _TABLES:
        raise KeyError(f"Expected a class decorated with document_arguments, got {cls.__qualname__}")
    return _TABLES[cls]
