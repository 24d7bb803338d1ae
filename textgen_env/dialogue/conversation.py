"""A conversation as the model's text: its chat template when the tokenizer has one, else a plain transcript."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from textgen_env.chat import render

__all__ = ["fit_to_context", "render"]


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
