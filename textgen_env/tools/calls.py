"""Tool-call formats: how a call is written in the token stream, how the env finds and parses it, how a result is
written back.

Two formats, both a JSON object between tags (``{"name": ..., "arguments": {...}}``):

* ``"hermes"``, the tool format of chat templates that have one (Qwen2.5, Hermes and others whose template writes
  ``<tool_call>``): calls in ``<tool_call>...</tool_call>``, results in ``<tool_response>...</tool_response>``;
* ``"tags"``, the documented format for every other model: calls in ``<tool_call>...</tool_call>``, results in
  ``<tool_result>...</tool_result>``.

``"auto"`` picks ``"hermes"`` when the tokenizer's chat template mentions ``<tool_call>``, else ``"tags"``. The
result goes into the same assistant turn as the call (the template's role turns are not opened: the episode is one
token stream).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase

from textgen_env.tools.base import ToolError, ToolRegistry

__all__ = ["CALL_FORMATS", "CallFormat", "FoundCall", "call_format_for"]


@dataclass(frozen=True)
class FoundCall:
    """A closed call found in the text: its body (between the tags) and where the closing tag ends."""

    body: str
    end: int


@dataclass(frozen=True)
class CallFormat:
    """The tags of one tool-call format."""

    name: str
    call_open: str
    call_close: str
    result_open: str
    result_close: str

    def find_call(self, text: str, start: int) -> FoundCall | None:
        """The first call whose closing tag ends at or after `start`, or None while no call has closed."""
        close = text.find(self.call_close, start)
        if close < 0:
            return None
        opening = text.rfind(self.call_open, start, close)
        body = text[opening + len(self.call_open) : close] if opening >= 0 else None
        if body is None:  # a closing tag with no opening tag: a malformed call, reported as such
            body = f"\0missing {self.call_open}"
        return FoundCall(body=body, end=close + len(self.call_close))

    def parse(self, body: str) -> tuple[str, dict[str, Any]]:
        """(name, arguments) of a call body; `ToolError` when it is malformed."""
        if body.startswith("\0"):
            raise ToolError(f"Expected {self.call_open} before {self.call_close}, got none")
        try:
            call = json.loads(body.strip())
        except json.JSONDecodeError as error:
            raise ToolError(
                f'Expected a JSON object {{"name": ..., "arguments": {{...}}}} in the call, got {body.strip()[:80]!r} '
                f"({error.msg})"
            ) from None
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise ToolError(f'Expected a JSON object with a "name" string in the call, got {body.strip()[:80]!r}')
        arguments = call.get("arguments", call.get("parameters", {}))
        if isinstance(arguments, str):  # some models write the arguments as a JSON string
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                raise ToolError(f"Expected the arguments to be a JSON object, got {arguments[:80]!r}") from None
        if not isinstance(arguments, dict):
            raise ToolError(f"Expected the arguments to be a JSON object, got {json.dumps(arguments)[:80]}")
        return call["name"], arguments

    def call_text(self, name: str, arguments: dict[str, Any]) -> str:
        """How the policy writes a call of `name` with `arguments` (for prompts, demonstrations and tests)."""
        return f"{self.call_open}{json.dumps({'name': name, 'arguments': arguments})}{self.call_close}"

    def describe(self, tools: ToolRegistry) -> str:
        """A system-prompt paragraph: the tools with their argument schemas and how to call them."""
        lines = ["You can call these tools:"]
        for tool in tools:
            lines.append(f"- {tool.name}: {tool.description} Arguments: {json.dumps(dict(tool.parameters))}")
        lines.append(
            f'To call one, write {self.call_open}{{"name": "<tool>", "arguments": {{...}}}}{self.call_close}; the '
            f"result comes back as {self.result_open}...{self.result_close}."
        )
        return "\n".join(lines)


CALL_FORMATS = {
    "tags": CallFormat("tags", "<tool_call>", "</tool_call>", "<tool_result>", "</tool_result>"),
    "hermes": CallFormat("hermes", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"),
}
"""The formats by name (see the module docstring)."""


def call_format_for(tokenizer: PreTrainedTokenizerBase | None, choice: str = "auto") -> CallFormat:
    """The format `choice` names, or for ``"auto"`` the one the tokenizer's chat template uses."""
    if choice == "auto":
        template = getattr(tokenizer, "chat_template", None) if tokenizer is not None else None
        texts = template.values() if isinstance(template, dict) else [template or ""]
        return CALL_FORMATS["hermes" if any("<tool_call>" in t for t in texts) else "tags"]
    if choice not in CALL_FORMATS:
        raise ValueError(f"Expected tool_format to be one of {['auto', *CALL_FORMATS]}, got {choice!r}")
    return CALL_FORMATS[choice]
