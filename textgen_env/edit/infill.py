"""Text from the env's language model for edits (insert, replace, rewrite) and generated drafts, by prompting.

Every request is a prompt; all requests of a step (of every slot) are sampled together by the package's one sampler
(`textgen_env.generation.LMWriter`: KV-cached, each row with noise from its slot's ``np_random``), so a seeded env
proposes the same text every time. A causal LM fills a gap from its left context: the default template is the text
before the gap, and the right context stays as it is; a model trained for fill-in-the-middle can be given its own
template (``{before}``, ``{after}`` and ``{span}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from textgen_env.generation import LMWriter, torch_generator

__all__ = ["TEMPLATE_FIELDS", "InfillRequest", "InfillWriter"]

TEMPLATE_FIELDS = ("before", "after", "span")
"""The fields an infill template may use."""


@dataclass(frozen=True)
class InfillRequest:
    """One piece of text to write: what comes before the gap, after it and what it replaces."""

    before: str
    after: str = ""
    span: str = ""
    max_words: int = 3
    """Words kept from the sample at most; a sentence rewrite keeps words up to its first sentence end."""
    sentence: bool = False
    """Whether the text is a whole sentence (stop at its end mark)."""


class InfillWriter(LMWriter):
    """Samples short continuations for batches of `InfillRequest` (see the module docstring).

    Args:
        model: the env's causal LM.
        tokenizer: its tokenizer.
        template: how a request becomes a prompt (``str.format`` over `TEMPLATE_FIELDS`).
        max_new_tokens: tokens sampled per request at most.
        max_prompt_tokens: prompts keep their last this many tokens.
        temperature: the sampling temperature (> 0).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        template: str = "{before}",
        max_new_tokens: int = 8,
        max_prompt_tokens: int = 64,
        temperature: float = 1.0,
    ) -> None:
        super().__init__(model, tokenizer, temperature=temperature)
        self.template = template
        self.max_new_tokens = max_new_tokens
        self.max_prompt_tokens = max_prompt_tokens
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        self._start = int(start if start is not None else tokenizer.pad_token_id)

    def prompt_ids(self, request: InfillRequest) -> list[int]:
        """The prompt tokens of `request` (at least one, at most `max_prompt_tokens`)."""
        text = self.template.format(before=request.before, after=request.after, span=request.span)
        ids = list(self.tokenizer(text)["input_ids"])[-self.max_prompt_tokens :]
        return ids or [self._start]

    def write(self, requests: Sequence[InfillRequest], np_randoms: Sequence[np.random.Generator]) -> list[str]:
        """The text for each request (possibly empty when the model ends at once), sampled in one batch; request
        i draws its noise from ``np_randoms[i]`` (one generator per slot, shared by that slot's requests)."""
        if not requests:
            return []
        generators: dict[int, torch.Generator] = {}
        row_generators = [generators.setdefault(id(g), torch_generator(g)) for g in np_randoms]
        samples = self.sample([self.prompt_ids(r) for r in requests], self.max_new_tokens, row_generators)
        return [_trim(text, request) for text, request in zip(samples, requests)]


def _trim(text: str, request: InfillRequest) -> str:
    words = text.split()
    if request.sentence:  # a sentence keeps an end mark, so the text after it still starts a sentence
        for i, word in enumerate(words[: request.max_words]):
            if word.endswith((".", "!", "?")):
                return " ".join(words[: i + 1])
        return " ".join(words[: request.max_words]) + "." if words else ""
    return " ".join(words[: request.max_words])
