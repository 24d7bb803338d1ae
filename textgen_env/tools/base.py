"""`Tool` and `ToolRegistry`: what a tool is (name, description, JSON-schema of its arguments, a callable) and the
lookup that turns a call's name into one, with a clear error naming the valid tools."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Tool", "ToolError", "ToolRegistry", "UnknownToolError", "check_arguments"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


class ToolError(Exception):
    """A tool refused its arguments or failed; the env turns the message into the call's error result."""


class UnknownToolError(ToolError, KeyError):
    """A call named a tool that is not registered (the message lists the valid names)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Tool:
    """A tool the policy can call: the callable gets the call's JSON arguments as keyword arguments.

    ``fn`` returns the result as text (anything else is converted with ``str``, or ``json.dumps`` for dicts and
    lists); an exception it raises becomes the call's error result, and the episode goes on.

    >>> add = Tool("add", "Add two integers.", {"type": "object", "properties": {"a": {"type": "integer"},
    ...     "b": {"type": "integer"}}, "required": ["a", "b"]}, lambda a, b: a + b)
    >>> add.call({"a": 2, "b": 3})
    '5'
    """

    name: str
    """The name a call uses (letters, digits, ``_`` and ``-``, starting with a letter or ``_``)."""
    description: str
    """One or two sentences for the system prompt: what the tool does and returns."""
    parameters: Mapping[str, Any]
    """JSON schema of the arguments: ``{"type": "object", "properties": {...}, "required": [...]}``."""
    fn: Callable[..., Any] = field(repr=False)
    """The function that runs a call, with the arguments as keywords."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"Expected a tool name of letters, digits, '_' or '-' (1-64 chars), got {self.name!r}")
        if not isinstance(self.description, str) or not self.description.strip():
            raise ValueError(f"Expected a non-empty description for tool {self.name!r}, got {self.description!r}")
        if not isinstance(self.parameters, Mapping) or self.parameters.get("type") != "object":
            raise ValueError(
                f"Expected parameters to be a JSON schema with type 'object' for tool {self.name!r}, "
                f"got {self.parameters!r}"
            )
        if not callable(self.fn):
            raise TypeError(f"Expected a callable fn for tool {self.name!r}, got {type(self.fn).__name__}")

    def schema(self) -> dict[str, Any]:
        """The tool as an OpenAI-style function schema (what ``tokenizer.apply_chat_template(tools=...)`` takes)."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": dict(self.parameters)},
        }

    def call(self, arguments: Mapping[str, Any]) -> str:
        """Check `arguments` against the schema, run the tool and return its result as text (errors raise)."""
        check_arguments(self.name, self.parameters, arguments)
        result = self.fn(**arguments)
        if isinstance(result, str):
            return result
        if isinstance(result, (dict, list)):
            return json.dumps(result)
        return str(result)


def check_arguments(tool: str, schema: Mapping[str, Any], arguments: Any) -> None:
    """Raise `ToolError` unless `arguments` is an object with the schema's required keys, no unknown ones (unless
    ``additionalProperties`` allows them) and values of the declared JSON types (top level only)."""
    if not isinstance(arguments, Mapping):
        raise ToolError(f"Expected the arguments of {tool} to be a JSON object, got {type(arguments).__name__}")
    properties: Mapping[str, Any] = schema.get("properties", {})
    missing = [key for key in schema.get("required", ()) if key not in arguments]
    if missing:
        raise ToolError(f"Expected argument(s) {', '.join(missing)} for {tool}, got {sorted(arguments)}")
    if schema.get("additionalProperties", False) is False:
        unknown = [key for key in arguments if key not in properties]
        if unknown:
            raise ToolError(f"Expected only arguments {sorted(properties)} for {tool}, got unknown {unknown}")
    for key, value in arguments.items():
        kind = properties.get(key, {}).get("type")
        types = _JSON_TYPES.get(kind) if isinstance(kind, str) else None
        if types is None:
            continue
        wrong_bool = isinstance(value, bool) and kind in ("integer", "number")
        if wrong_bool or not isinstance(value, types):
            raise ToolError(f"Expected argument {key} of {tool} to be a JSON {kind}, got {json.dumps(value)[:60]}")


class ToolRegistry:
    """The tools of an env by name; `get` of an unknown name raises `UnknownToolError` listing the valid ones."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if not isinstance(tool, Tool):
                raise TypeError(f"Expected a Tool, got {type(tool).__name__} {tool!r}")
            if tool.name in self._tools:
                raise ValueError(f"Expected distinct tool names, got {tool.name!r} twice")
            self._tools[tool.name] = tool

    @property
    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> Tool:
        """The tool called `name`."""
        tool = self._tools.get(name)
        if tool is None:
            raise UnknownToolError(f"Unknown tool {name!r}; expected one of: {', '.join(self.names)}")
        return tool

    def schemas(self) -> list[dict[str, Any]]:
        """Every tool's `Tool.schema`, for ``apply_chat_template(tools=...)``."""
        return [tool.schema() for tool in self]
