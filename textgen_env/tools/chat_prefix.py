"""`check_chat_template_prefix`: does a tokenizer's chat template have the prefix property across turns?

A multi-turn episode is token-exact only if the text the policy saw at turn k is a prefix of the text at turn k+1:
then the tokens of turn k can be kept as they were, and nothing is re-rendered behind the policy's back. Templates
break it by editing earlier turns (dropping an earlier reply's reasoning, moving a date or a system prompt), by
rendering the generation prompt differently from the reply that follows it, or by token merges across the seam
(the text is a prefix but its tokens are not). TextGen-v0's tool results never re-render anything (one token buffer);
the check matters for conversations rendered turn by turn (TextDialogue-v0 re-renders the conversation per reply).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers import PreTrainedTokenizerBase

__all__ = ["DEFAULT_CONVERSATION", "PrefixReport", "check_chat_template_prefix"]

DEFAULT_CONVERSATION: tuple[dict[str, str], ...] = (
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is 12 times 34?"},
    {"role": "assistant", "content": "Let me compute it: 12 * 34 = 408."},
    {"role": "user", "content": "And 408 plus 1?"},
    {"role": "assistant", "content": "409."},
    {"role": "user", "content": "Thanks!"},
)
"""The conversation checked by default: a system prompt and three user turns with two replies."""


@dataclass
class PrefixReport:
    """What `check_chat_template_prefix` found: ``ok`` when every check passed, else one line per break."""

    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            return "The chat template has the prefix property on this conversation."
        return "The chat template breaks the prefix property:\n" + "\n".join(f"- {p}" for p in self.problems)


def _seam(shorter: str, longer: str) -> str:
    at = next((i for i, (a, b) in enumerate(zip(shorter, longer)) if a != b), min(len(shorter), len(longer)))
    before, after = shorter[max(0, at - 30) : at + 30], longer[max(0, at - 30) : at + 30]
    return f"they first differ at character {at}: {before!r} vs {after!r}"


def check_chat_template_prefix(
    tokenizer: PreTrainedTokenizerBase, conversation: Sequence[dict[str, Any]] = DEFAULT_CONVERSATION
) -> PrefixReport:
    """Render `conversation` one message at a time and check, for every k, that the rendering of the first k
    messages is a prefix of the rendering of the first k+1, as text and as tokens, and that the generation prompt
    after k messages is a prefix of the rendering with the assistant's reply (message k+1)."""
    if not getattr(tokenizer, "chat_template", None):
        return PrefixReport(["the tokenizer has no chat template (a plain transcript is used instead)"])
    report = PrefixReport()

    def render(messages: Sequence[dict[str, Any]], generation_prompt: bool = False) -> str:
        return str(
            tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt)
        )

    def tokens(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    start = 1
    for k in range(start, len(conversation)):
        shorter, longer = render(conversation[:k]), render(conversation[: k + 1])
        role = conversation[k]["role"]
        if not longer.startswith(shorter):
            report.problems.append(
                f"adding message {k} ({role}) changes the text of the earlier ones; {_seam(shorter, longer)}"
            )
        elif tokens(longer)[: len(tokens(shorter))] != tokens(shorter):
            report.problems.append(
                f"adding message {k} ({role}) keeps the text but not the tokens of the earlier ones (a token merges "
                "across the seam)"
            )
        if role == "assistant":
            prompt = render(conversation[:k], generation_prompt=True)
            if not longer.startswith(prompt):
                report.problems.append(
                    f"the generation prompt after message {k - 1} is not how the template writes reply {k}; "
                    f"{_seam(prompt, longer)}"
                )
    return report
