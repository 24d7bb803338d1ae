"""`Tool`, `check_arguments`, `ToolRegistry` and `make_registry`: custom callables, schemas, clear errors."""

from __future__ import annotations

import pytest

from textgen_env.tools import BUILTIN_TOOLS, Tool, ToolError, ToolRegistry, UnknownToolError, make_registry

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a"]}


def _add(a: int, b: int = 1) -> int:
    return a + b


def test_a_custom_callable_is_a_tool_with_a_function_schema():
    tool = Tool("add", "Add two integers.", SCHEMA, _add)
    assert tool.call({"a": 2, "b": 3}) == "5" and tool.call({"a": 2}) == "3"
    assert tool.schema() == {
        "type": "function",
        "function": {"name": "add", "description": "Add two integers.", "parameters": SCHEMA},
    }
    listing = Tool("ls", "List.", {"type": "object", "properties": {}}, lambda: [1, 2])
    assert listing.call({}) == "[1, 2]"


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({}, "Expected argument\\(s\\) a for add"),
        ({"a": 1, "c": 2}, "Expected only arguments \\['a', 'b'\\] for add, got unknown \\['c'\\]"),
        ({"a": "1"}, "Expected argument a of add to be a JSON integer"),
        ({"a": True}, "Expected argument a of add to be a JSON integer"),
        ([1], "Expected the arguments of add to be a JSON object"),
    ],
    ids=["missing", "unknown", "wrong-type", "bool-for-int", "not-an-object"],
)
def test_arguments_are_checked_against_the_schema(arguments, message):
    with pytest.raises(ToolError, match=message):
        Tool("add", "Add two integers.", SCHEMA, _add).call(arguments)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"name": "bad name"}, ValueError, "Expected a tool name of letters"),
        ({"description": " "}, ValueError, "Expected a non-empty description"),
        ({"parameters": {"type": "string"}}, ValueError, "Expected parameters to be a JSON schema with type 'object'"),
        ({"fn": 3}, TypeError, "Expected a callable fn"),
    ],
    ids=["name", "description", "schema", "callable"],
)
def test_bad_tool_definitions_raise(kwargs, error, message):
    settings = {"name": "add", "description": "Add.", "parameters": SCHEMA, "fn": _add, **kwargs}
    with pytest.raises(error, match=message):
        Tool(**settings)


def test_an_unknown_name_lists_the_valid_tools():
    registry = make_registry(["calculator", Tool("add", "Add.", SCHEMA, _add)])
    assert registry.names == ["calculator", "add"] and "add" in registry and len(registry) == 2
    with pytest.raises(UnknownToolError, match="Unknown tool 'abacus'; expected one of: calculator, add"):
        registry.get("abacus")
    assert [s["function"]["name"] for s in registry.schemas()] == ["calculator", "add"]


def test_registry_errors():
    tool = Tool("add", "Add.", SCHEMA, _add)
    with pytest.raises(ValueError, match="Expected distinct tool names, got 'add' twice"):
        ToolRegistry([tool, tool])
    with pytest.raises(ValueError, match="Expected a Tool or one of the built-in tools"):
        make_registry(["abacus"])
    with pytest.raises(TypeError, match="Expected tools to be a list"):
        make_registry("calculator")  # type: ignore[arg-type]  # the mistake under test
    assert make_registry(list(BUILTIN_TOOLS)).names == list(BUILTIN_TOOLS)
