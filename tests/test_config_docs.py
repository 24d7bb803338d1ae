"""The argument tables generated from the configs' field docstrings, and the env docstrings that hold them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from textgen_env import TextGenEnv
from textgen_env.config import TextGenConfig
from textgen_env.config_docs import (
    ARGUMENTS_MARKER,
    argument_rows,
    argument_table,
    document_arguments,
    documented_table,
    field_docs,
    markdown_table,
)
from textgen_env.dialogue import DialogueConfig, TextDialogueEnv
from textgen_env.dialogue.config import REPLY_ARGUMENTS, dialogue_arguments_table
from textgen_env.edit import TextEditEnv
from textgen_env.edit.config import TextEditConfig


@dataclass(frozen=True)
class _Base:
    size: int = 3
    """How many,
    over two lines."""


@dataclass(frozen=True)
class _Child(_Base):
    names: tuple[str, ...] = field(default_factory=lambda: ("a", "b"))
    """Names | with a pipe."""
    undocumented: float = 0.5
    required: str = ""


def test_field_docs_reads_the_docstrings_under_fields_and_in_bases():
    assert field_docs(_Child) == {"size": "How many, over two lines.", "names": "Names | with a pipe."}


def test_argument_rows_show_names_defaults_and_docs():
    rows = argument_rows(_Child, exclude=("required",))
    assert rows == [
        ("`size`", "`3`", "How many, over two lines."),
        ("`names`", "`('a', 'b')`", "Names | with a pipe."),
        ("`undocumented`", "`0.5`", ""),
    ]
    with pytest.raises(TypeError, match="Expected a dataclass, got"):
        argument_rows(int)


def test_markdown_table_escapes_pipes():
    assert markdown_table([("a|b", "c")], ("x", "y")) == "| x | y |\n|---|---|\n| a\\|b | c |"
    assert "Names \\| with a pipe." in argument_table(_Child)


def test_document_arguments_replaces_the_marker_line_with_the_indented_table():
    @document_arguments("| a |\n|---|")
    class Documented:
        """Title.

        ## Arguments
        {arguments}

        After.
        """

    assert "        | a |\n        |---|\n\n        After." in Documented.__doc__
    assert ARGUMENTS_MARKER not in Documented.__doc__
    assert documented_table(Documented) == "| a |\n|---|"


def test_document_arguments_needs_one_marker_and_tolerates_no_docstring():
    with pytest.raises(ValueError, match=r"Expected one \{arguments\} line in NoMarker's docstring, got 0"):

        @document_arguments("| a |")
        class NoMarker:
            """No table here."""

    @document_arguments("| a |")
    class Undocumented:  # as under python -OO
        __doc__ = None

    assert Undocumented.__doc__ is None and documented_table(Undocumented) == "| a |"
    with pytest.raises(KeyError, match="Expected a class decorated with document_arguments, got int"):
        documented_table(int)


@pytest.mark.parametrize("config", [TextGenConfig, DialogueConfig, TextEditConfig], ids=lambda c: c.__name__)
def test_every_env_argument_has_a_docstring(config):
    undocumented = [f.name for f in dataclasses.fields(config) if not field_docs(config).get(f.name)]
    assert not undocumented, f"{config.__name__} fields without a docstring under them: {undocumented}"


@pytest.mark.parametrize(
    ("env", "table"),
    [
        (TextGenEnv, argument_table(TextGenConfig)),
        (TextDialogueEnv, dialogue_arguments_table()),
        (TextEditEnv, argument_table(TextEditConfig)),
    ],
    ids=["TextGen", "TextDialogue", "TextEdit"],
)
def test_env_docstrings_hold_the_generated_table(env, table):
    assert documented_table(env) == table
    assert "\n    ## Arguments\n" in env.__doc__ and ARGUMENTS_MARKER not in env.__doc__
    assert "\n".join("    " + line for line in table.split("\n")) in env.__doc__


def test_textgen_table_has_one_row_per_field_in_order():
    rows = argument_table(TextGenConfig).split("\n")[2:]
    assert [row.split(" | ")[0].strip("| `") for row in rows] == [f.name for f in dataclasses.fields(TextGenConfig)]
    assert "`reference_logprobs` | `False` |" in argument_table(TextGenConfig)


def test_dialogue_table_lists_the_textgen_arguments_it_takes():
    textgen = {f.name for f in dataclasses.fields(TextGenConfig)}
    assert set(REPLY_ARGUMENTS) <= textgen
    assert set(REPLY_ARGUMENTS.values()) <= {f.name for f in dataclasses.fields(DialogueConfig)}
    others = dialogue_arguments_table().split("\n")[-1]
    listed = {name for name in textgen if f"``{name}``" in others}
    assert listed == textgen - set(REPLY_ARGUMENTS)


@pytest.mark.parametrize("argument", sorted(REPLY_ARGUMENTS), ids=str)
def test_dialogue_env_rejects_the_textgen_arguments_it_replaces(argument):
    value = ["hi"] if argument == "prompts" else 8
    with pytest.raises(ValueError, match=f"Expected max_reply_tokens, .* for TextDialogue-v0, got {argument}$"):
        TextDialogueEnv(**{argument: value})
