"""Tools the policy can call inside an episode: the `Tool` type, the built-ins (``calculator``, ``python``,
``search``), the registry and the call formats. The episode core (`textgen_env.tool_episodes`) runs them.

    gym.make("TextGen-v0", tools=["calculator", "search"])          # built-ins by name
    gym.make("TextGen-v0", tools=[search_tool("my_corpus.jsonl")])  # a built-in with options
    gym.make("TextGen-v0", tools=[Tool("add", "Add two integers.", schema, lambda a, b: a + b)])
"""

from __future__ import annotations

from collections.abc import Sequence

from textgen_env.tools.base import Tool, ToolError, ToolRegistry, UnknownToolError, check_arguments
from textgen_env.tools.calculator import calculate, calculator_tool
from textgen_env.tools.calls import CALL_FORMATS, CallFormat, call_format_for
from textgen_env.tools.chat_prefix import PrefixReport, check_chat_template_prefix
from textgen_env.tools.python_sandbox import PythonSandbox, SandboxResult, python_tool
from textgen_env.tools.search import SearchIndex, load_corpus, search_tool

__all__ = [
    "BUILTIN_TOOLS",
    "CALL_FORMATS",
    "CallFormat",
    "PrefixReport",
    "PythonSandbox",
    "SandboxResult",
    "SearchIndex",
    "Tool",
    "ToolError",
    "ToolRegistry",
    "UnknownToolError",
    "calculate",
    "calculator_tool",
    "call_format_for",
    "check_arguments",
    "check_chat_template_prefix",
    "load_corpus",
    "make_registry",
    "python_tool",
    "search_tool",
]

BUILTIN_TOOLS = ("calculator", "python", "search")
"""The tools `make_registry` builds from a name."""


def make_registry(tools: Sequence[Tool | str], *, timeout_s: float = 10.0) -> ToolRegistry:
    """A registry of `tools`: `Tool` instances as they are, built-in names built with their defaults (the
    ``python`` tool with a wall-clock limit of `timeout_s`)."""
    if isinstance(tools, (str, Tool)) or not isinstance(tools, Sequence):
        raise TypeError(f"Expected tools to be a list of Tool or built-in names, got {tools!r}")
    built = []
    for tool in tools:
        if isinstance(tool, Tool):
            built.append(tool)
        elif tool == "calculator":
            built.append(calculator_tool())
        elif tool == "python":
            built.append(python_tool(PythonSandbox(timeout_s=timeout_s, cpu_time_s=max(1, int(timeout_s)))))
        elif tool == "search":
            built.append(search_tool())
        else:
            raise ValueError(f"Expected a Tool or one of the built-in tools {list(BUILTIN_TOOLS)}, got {tool!r}")
    return ToolRegistry(built)
