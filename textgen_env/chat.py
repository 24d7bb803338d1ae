"""Chat messages as the model's text: its chat template when the tokenizer has one, else a plain transcript."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from transformers import PreTrainedTokenizerBase

__all__ = ["render"]

_PLAIN_ROLES = {"system": "System", "user": "User", "assistant": "Assistant"}


def render(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, str]], *, template: bool = True) -> str:
    """The text of `messages` ending where the assistant's next reply starts.

    With `template` and a tokenizer that has a chat template (SmolLM2-Instruct does), that template renders it
    (``add_generation_prompt=True``); otherwise a plain ``User: ... / Assistant: ...`` transcript.

    Raises:
        ValueError: the chat template cannot render the conversation (its message is included).
    """
    if template and getattr(tokenizer, "chat_template", None):
        try:
            text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
            return cast(str, text)  # tokenize=False renders a string
        except Exception as error:  # jinja's TemplateError and friends
            raise ValueError(
                f"Expected the tokenizer's chat template to render the conversation {list(messages)!r}, got "
                f"{type(error).__name__}: {error}; pass chat_template=False for a plain transcript"
            ) from error
    lines = [f"{_PLAIN_ROLES.get(m['role'], m['role'].title())}: {m['content']}" for m in messages]
    return "\n".join([*lines, "Assistant:"])
