"""Text from the env's language model for edits (insert, replace, rewrite) and generated drafts, by prompting.

Every request is a prompt; all requests of a step (of every slot) are sampled together, one KV-cached token forward
per new token for the whole batch (`textgen_env.kv.SlotKVCache`, the cache the generation env uses), each row with
noise from its slot's ``np_random``, so a seeded env proposes the same text every time. A causal LM fills a gap
from its left context: the default template is the text before the gap, and the right context stays as it is;
a model trained for fill-in-the-middle can be given its own template (``{before}``, ``{after}`` and ``{span}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from textgen_env.kv import SlotKVCache

__all__ = ["TEMPLATE_FIELDS", "InfillRequest", "LMWriter", "torch_generator"]

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


def torch_generator(np_random: np.random.Generator) -> torch.Generator:
    """A CPU torch generator seeded from `np_random` (so the env's seed decides every LM sample)."""
    return torch.Generator().manual_seed(int(np_random.integers(2**62)))


class LMWriter:
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
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.max_new_tokens = max_new_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.temperature = temperature
        self.device = next(model.parameters()).device
        banned = {tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.bos_token_id} - {None}
        self._banned = torch.tensor(sorted(banned), dtype=torch.long)
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

    @torch.inference_mode()
    def sample(
        self, prompts: Sequence[list[int]], max_new_tokens: int, generators: Sequence[torch.Generator]
    ) -> list[str]:
        """Sample up to `max_new_tokens` tokens after each prompt (rows stop at EOS) and decode them.

        Row i's noise comes from ``generators[i]`` (Gumbel-max sampling, so rows of different slots batch
        together and each slot's text depends on its own generator only).
        """
        count = len(prompts)
        cache = SlotKVCache(self.model, count)
        out = cache.advance(prompts, reset=[True] * count)
        eos = self.tokenizer.eos_token_id
        vocab = len(self.tokenizer)
        finished = [False] * count
        tokens: list[list[int]] = [[] for _ in range(count)]
        for step in range(max_new_tokens):
            logits = out.logits[:, :vocab].cpu() / self.temperature  # (B, V)
            if len(self._banned):
                logits[:, self._banned] = -torch.inf
            uniform = torch.stack([torch.rand(vocab, generator=g) for g in generators])  # (B, V)
            gumbel = -torch.log(-torch.log(uniform.clamp(1e-12, 1 - 1e-7)))  # (B, V)
            chosen = (logits + gumbel).argmax(dim=-1)  # (B,): a sample of softmax(logits)
            for row, token in enumerate(chosen.tolist()):
                if not finished[row]:
                    finished[row] = token == eos
                    if not finished[row]:
                        tokens[row].append(token)
            if all(finished) or step == max_new_tokens - 1:
                break
            out = cache.advance([[t] for t in chosen.tolist()], reset=[False] * count, hold=finished)
        return self.tokenizer.batch_decode(tokens, skip_special_tokens=True)


def _trim(text: str, request: InfillRequest) -> str:
    words = text.split()
    if request.sentence:  # a sentence keeps an end mark, so the text after it still starts a sentence
        for i, word in enumerate(words[: request.max_words]):
            if word.endswith((".", "!", "?")):
                return " ".join(words[: i + 1])
        return " ".join(words[: request.max_words]) + "." if words else ""
    return " ".join(words[: request.max_words])
