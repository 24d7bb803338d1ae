"""A conversation as the model's text: its chat template when the tokenizer has one, else a plain transcript."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from transformers import PreTrainedTokenizerBase

__all__ = ["fit_to_context", "render"]

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


def fit_to_context(
    tokenizer: PreTrainedTokenizerBase,
    messages: list[dict[str, str]],
    max_tokens: int,
    *,
    template: bool = True,
) -> str:
    """`render` of `messages`, dropping the oldest turns (never a system message or the last message) until the
    text fits in `max_tokens` tokens; a last message that alone is too long keeps its end (the env truncates)."""
    kept = list(messages)
    text = render(tokenizer, kept, template=template)
    while len(tokenizer(text)["input_ids"]) > max_tokens:
        removable = [i for i, m in enumerate(kept[:-1]) if m["role"] != "system"]
        if not removable:
            break
        del kept[removable[0]]
        text = render(tokenizer, kept, template=template)
    return text
