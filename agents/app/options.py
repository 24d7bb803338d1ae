"""Command-line flags and docs tables derived from the settings dataclasses (their fields, types and docstrings).

A setting is declared once, as a dataclass field with a docstring under it (`TrainSettings`, the agent configs of
`agents.config`). `add_dataclass_flags` turns fields into ``argparse`` flags (name, type, default, help),
`agent_option_fields` gathers the agents' options for ``textgen-env train`` and `markdown_table` writes the docs'
tables from the same fields, so the parser, the docs and the checks cannot disagree. The docstring reader and the
table writer are the env's (`textgen_env.config_docs`, which the env's own argument tables use too).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import MISSING, dataclass
from typing import Any

from textgen_env.config_docs import field_docs, markdown_table

__all__ = [
    "OptionField",
    "add_dataclass_flags",
    "agent_option_fields",
    "field_docs",
    "field_options",
    "markdown_table",
    "parse_bool",
]


def parse_bool(text: str) -> bool:
    """``true``/``false`` (also yes/no, 1/0, on/off) as a bool, for boolean options given as values."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"Expected true or false, got {text!r}")


@dataclass(frozen=True)
class OptionField:
    """One setting as the command line sees it."""

    name: str
    kind: Any
    """The field's type without ``None``: int, float, str, bool or a ``Literal``."""
    optional: bool
    """Whether None is a valid value (given as ``none`` on the command line)."""
    default: Any
    doc: str
    aliases: tuple[str, ...] = ()
    """Other flags for the same setting (``metadata={"aliases": ("--scenario",)}`` on the field)."""

    @property
    def flag(self) -> str:
        return f"--{self.name.replace('_', '-')}"

    def parse(self, text: str) -> Any:
        """The value of `text` for this field (argparse's ``type=``)."""
        if self.optional and text.strip().lower() == "none":
            return None
        if self.kind is bool:
            return parse_bool(text)
        if typing.get_origin(self.kind) is typing.Literal:
            choices = typing.get_args(self.kind)
            if text not in choices:
                raise argparse.ArgumentTypeError(f"Expected one of {list(choices)}, got {text!r}")
            return text
        try:
            return self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"Expected {self.kind.__name__}, got {text!r}") from None

    @property
    def metavar(self) -> str:
        if typing.get_origin(self.kind) is typing.Literal:
            return "{" + ",".join(typing.get_args(self.kind)) + "}"
        name = "true|false" if self.kind is bool else self.kind.__name__.upper()
        return f"{name}|none" if self.optional else name


def field_options(cls: type, exclude: tuple[str, ...] = ()) -> list[OptionField]:
    """The fields of dataclass `cls` as `OptionField` (types resolved from the annotations)."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    options = []
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        kind, optional = hints[f.name], False
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            optional = len(args) < len(typing.get_args(kind))
            kind = next((a for a in args if a in (int, float, str, bool)), str)
        default = f.default if f.default is not MISSING else None
        aliases = tuple(f.metadata.get("aliases", ()))
        doc = docs.get(f.name, "") + "".join(f" Also `{alias}`." for alias in aliases)
        options.append(OptionField(f.name, kind, optional, default, doc, aliases))
    return options


def add_dataclass_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    options: list[OptionField],
    *,
    absent_when_not_given: bool = False,
) -> None:
    """One ``--flag`` per option (and its aliases, same dest); booleans get ``--flag/--no-flag``.

    With `absent_when_not_given`, a flag that is not given leaves no attribute on the namespace (so the caller
    can tell "not given" from any value, None included), and the help shows no default.
    """
    for option in options:
        help_text = option.doc.replace("%", "%%")
        default = argparse.SUPPRESS if absent_when_not_given else option.default
        if option.kind is bool and not option.optional and not absent_when_not_given:
            action = argparse.BooleanOptionalAction
            parser.add_argument(option.flag, *option.aliases, action=action, default=default, help=help_text)
            continue
        flags = (option.flag, *option.aliases)  # argparse takes the dest from the first: the field's name
        parser.add_argument(*flags, type=option.parse, default=default, metavar=option.metavar, help=help_text)


def agent_option_fields() -> dict[str, tuple[OptionField, tuple[str, ...]]]:
    """Every agent option (a field of any agent's config except ``seed``) -> its field and the agents that take it
    (the edit agents as ``edit-ppo`` and ``edit-reinforce``). A field's first declaration gives its doc and default."""
    from agents import AGENTS, EDIT_AGENTS  # the registries: name -> Agent class

    gathered: dict[str, tuple[OptionField, list[str]]] = {}
    named = [*AGENTS.items(), *((f"edit-{name}", agent) for name, agent in EDIT_AGENTS.items())]
    for name, agent in named:
        for option in field_options(agent.config_class, exclude=("seed",)):
            if option.name not in gathered:
                gathered[option.name] = (option, [])
            gathered[option.name][1].append(name)
    return {key: (option, tuple(names)) for key, (option, names) in gathered.items()}
