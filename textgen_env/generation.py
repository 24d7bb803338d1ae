"""Text generation: one KV-cached sampler for every text the package samples, and the stop rules that end a completion.

Everything that samples tokens from a model goes through `KVSampler` (one `SlotKVCache` forward per new token for the
whole batch, then a token per row): the evaluation's completions, the demo's policy, the edit env's infills and
generated drafts, and the simulated dialogue users. The stop rules (`StopRules`) are those of the generation env's
episodes, which call the same function.

Two ways to draw the tokens, both exact samples of ``softmax(logits / temperature)``:

* one ``generator`` for the whole batch (`sample_tokens`, inverse CDF: one uniform per row and step), what the
  agents and the evaluation use;
* one generator per row (`sample_tokens_per_row`, Gumbel-max: a row's text depends on its own generator only, so rows
  of different env slots batch together), what the env's own text uses.

    rules = StopRules(max_new_tokens=8, eos_token_id=tokenizer.eos_token_id)
    completions = generate(model, [[5, 6, 7], [8]], rules, vocab_size=len(tokenizer), generator=torch_gen)
    completions[0].tokens, completions[0].stop_reason  # ([12, 40, 2], "eos")
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from textgen_env.kv import SlotKVCache

__all__ = [
    "Completion",
    "KVSampler",
    "LMWriter",
    "StopReason",
    "StopRules",
    "generate",
    "sample_tokens",
    "sample_tokens_per_row",
    "torch_generator",
]

StopReason = Literal["eos", "stop_string", "max_new_tokens"]


# ------------------------------------------------------------------------------------------------------ stop rules
@dataclass(frozen=True)
class StopRules:
    """When a completion ends. The first rule that holds names the reason: EOS, then a stop string, then length."""

    max_new_tokens: int
    """The completion ends once it has this many tokens."""
    eos_token_id: int | None = None
    """The completion ends with this token (included in it); None: no EOS rule."""
    stop_strings: tuple[str, ...] = ()
    """The completion ends once its decoded text contains one of these."""

    def __post_init__(self) -> None:
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"Expected max_new_tokens to be an int >= 1, got {self.max_new_tokens!r}")
        object.__setattr__(self, "stop_strings", tuple(self.stop_strings))

    def reason(self, completion: Sequence[int], text: str | None = None) -> StopReason | None:
        """Why `completion` ends after its last token, or None while it goes on.

        Args:
            completion: the completion's token ids so far (at least one).
            text: its decoded text; needed only when there are stop strings.
        """
        if self.eos_token_id is not None and completion[-1] == self.eos_token_id:
            return "eos"
        if self.stop_strings:
            if text is None:
                raise ValueError("Expected the decoded text of the completion with stop_strings set, got None")
            if any(s in text for s in self.stop_strings):
                return "stop_string"
        if len(completion) >= self.max_new_tokens:
            return "max_new_tokens"
        return None


# -------------------------------------------------------------------------------------------------------- sampling
def sample_tokens(
    logits: torch.Tensor, *, temperature: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw one token per row from ``softmax(logits / temperature)``; ``temperature=0`` takes the argmax.

    Inverse CDF (cumsum + searchsorted) instead of ``torch.multinomial``: at batch 8 over a 50k vocabulary,
    multinomial costs about 11 ms per call on a 2-core CPU; one uniform per row costs ~1.5 ms for the same
    distribution.

    Args:
        logits: (B, V) unnormalised log-probabilities.
        temperature: > 0 to sample, 0 for greedy.
        generator: optional torch generator for reproducible draws (one (B, 1) draw per call).

    Returns:
        (B,) int64 token ids.
    """
    if logits.dim() != 2:
        raise ValueError(f"Expected logits of shape (B, V), got {tuple(logits.shape)}")
    if temperature < 0:
        raise ValueError(f"Expected temperature >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)  # (B, V)
    cdf = probs.cumsum(dim=-1)  # (B, V)
    u = torch.rand((logits.shape[0], 1), generator=generator, device=logits.device) * cdf[:, -1:]  # (B, 1)
    tokens = torch.searchsorted(cdf, u, right=True).squeeze(1)  # first index whose cdf exceeds u
    return tokens.clamp_(max=logits.shape[1] - 1)


def sample_tokens_per_row(
    logits: torch.Tensor, generators: Sequence[torch.Generator], *, temperature: float = 1.0
) -> torch.Tensor:
    """Draw row i's token from ``softmax(logits[i] / temperature)`` with noise from ``generators[i]`` only.

    Gumbel-max: ``argmax(logits / T + g)`` with ``g = -log(-log(u))`` and one uniform per vocabulary entry, drawn
    row by row in order (rows may share a generator). The logits move to the CPU, where the generators are.

    Args:
        logits: (B, V) unnormalised log-probabilities; -inf rules a token out.
        generators: B CPU torch generators.
        temperature: > 0 to sample, 0 for greedy (no draws).

    Returns:
        (B,) int64 token ids, on the CPU.
    """
    if logits.dim() != 2 or len(generators) != logits.shape[0]:
        raise ValueError(
            f"Expected logits of shape (B, V) and B generators, got {tuple(logits.shape)} and {len(generators)}"
        )
    if temperature < 0:
        raise ValueError(f"Expected temperature >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1).cpu()
    scaled = logits.cpu() / temperature  # (B, V)
    uniform = torch.stack([torch.rand(logits.shape[1], generator=g) for g in generators])  # (B, V)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-12, 1 - 1e-7)))  # (B, V)
    return (scaled + gumbel).argmax(dim=-1)  # (B,)


def torch_generator(np_random: np.random.Generator) -> torch.Generator:
    """A CPU torch generator seeded from `np_random` (so an env's seed decides every LM sample it takes)."""
    return torch.Generator().manual_seed(int(np_random.integers(2**62)))


# --------------------------------------------------------------------------------------------------------- sampler
class KVSampler:
    """A `SlotKVCache` over `num_slots` token streams and a way to draw each stream's next token.

    Args:
        model: a causal LM.
        num_slots: B, the number of streams.
        vocab_size: logits past this column (embedding rows no token uses) are dropped before sampling.
        temperature: > 0 to sample, 0 for greedy.
        generator: one generator for the whole batch (`sample_tokens`); None uses torch's global one.
        row_generators: one generator per stream instead (`sample_tokens_per_row`).
        banned_tokens: token ids never drawn.
        forward_context: a context every forward runs in (for example a policy's autocast).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        num_slots: int,
        *,
        vocab_size: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        row_generators: Sequence[torch.Generator] | None = None,
        banned_tokens: Sequence[int] = (),
        forward_context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> None:
        if temperature < 0:
            raise ValueError(f"Expected temperature >= 0, got {temperature}")
        if generator is not None and row_generators is not None:
            raise ValueError("Expected generator or row_generators, got both")
        if row_generators is not None and len(row_generators) != num_slots:
            raise ValueError(f"Expected {num_slots} row_generators, one per slot, got {len(row_generators)}")
        self.cache = SlotKVCache(model, num_slots)
        self.vocab_size = vocab_size
        self.temperature = temperature
        self.generator = generator
        self.row_generators = row_generators
        self.banned_tokens = torch.tensor(sorted(set(banned_tokens)), dtype=torch.long)
        self.forward_context = forward_context

    def logits(
        self, tokens: Sequence[Sequence[int]], restart: Sequence[bool], hold: Sequence[bool] | None = None
    ) -> torch.Tensor:
        """Feed each stream its new tokens (`SlotKVCache.advance`); return the (B, vocab_size) next-token logits."""
        with self.forward_context():
            out = self.cache.advance(tokens, restart, hold)
        logits = out.logits[:, : self.vocab_size].float()  # (B, V)
        if len(self.banned_tokens):  # out of place: the cache keeps its outputs for held streams
            logits = logits.index_fill(1, self.banned_tokens.to(logits.device), -torch.inf)
        return logits

    def step(
        self, tokens: Sequence[Sequence[int]], restart: Sequence[bool], hold: Sequence[bool] | None = None
    ) -> torch.Tensor:
        """Feed each stream its new tokens and draw its next one: (B,) int64 token ids (a held stream's is drawn
        too, from its unchanged logits, so every stream's random numbers advance alike)."""
        logits = self.logits(tokens, restart, hold)  # (B, V)
        if self.row_generators is not None:
            return sample_tokens_per_row(logits, self.row_generators, temperature=self.temperature)
        return sample_tokens(logits, temperature=self.temperature, generator=self.generator)


@dataclass
class Completion:
    """One sampled completion."""

    tokens: list[int]
    """Its token ids, the stopping token (EOS) included."""
    stop_reason: StopReason
    """Which rule ended it."""


def generate(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    rules: StopRules,
    *,
    vocab_size: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    row_generators: Sequence[torch.Generator] | None = None,
    banned_tokens: Sequence[int] = (),
    decode: Callable[[list[int]], str] | None = None,
    forward_context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    hold_finished: bool = True,
) -> list[Completion]:
    """Sample a completion of every prompt (at least one token each) in one batch until `rules` end it.

    Args:
        model, vocab_size, temperature, generator, row_generators, banned_tokens, forward_context: see `KVSampler`.
        prompts: the prompts' token ids.
        rules: when a completion ends.
        decode: token ids -> text, for the stop strings (needed only when `rules` has some).
        hold_finished: a finished row sits out the remaining steps; False feeds it the token drawn for it instead.
            Both give the same tokens up to the attention kernel: with no padding and no held row the mask is all
            ones, and SDPA may then take another kernel. The evaluation feeds its rows, as it always has, so that its
            numbers stay bit for bit those of earlier runs.
    """
    if rules.stop_strings and decode is None:
        raise ValueError("Expected decode= to match the stop strings against the text, got None")
    count = len(prompts)
    if count == 0:
        return []
    sampler = KVSampler(
        model,
        count,
        vocab_size=vocab_size,
        temperature=temperature,
        generator=generator,
        row_generators=row_generators,
        banned_tokens=banned_tokens,
        forward_context=forward_context,
    )
    tokens: list[list[int]] = [[] for _ in range(count)]
    reasons: list[StopReason | None] = [None] * count
    feed, restart, hold = [list(p) for p in prompts], [True] * count, None
    while True:
        chosen = sampler.step(feed, restart, hold).tolist()  # (B,) one token per row
        for row in range(count):
            if reasons[row] is None:
                tokens[row].append(chosen[row])
                text = decode(tokens[row]) if decode is not None and rules.stop_strings else None
                reasons[row] = rules.reason(tokens[row], text)
        ended = [r for r in reasons if r is not None]
        if len(ended) == count:
            return [Completion(t, r) for t, r in zip(tokens, ended)]
        feed, restart = [[t] for t in chosen], [False] * count
        hold = [r is not None for r in reasons] if hold_finished else None


# ---------------------------------------------------------------------------------------------------------- writer
class LMWriter:
    """Short texts the env samples from its model (infills and drafts of the edit env, simulated users' answers).

    Rows are sampled together, each with noise from its own generator, so a seeded env writes the same text whatever
    its other slots do. Padding, unknown and BOS tokens are never drawn; the text ends at EOS or after the given
    number of tokens and is decoded without special tokens.

    Args:
        model: the causal LM.
        tokenizer: its tokenizer.
        temperature: the sampling temperature (> 0).
    """

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, temperature: float = 1.0) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.temperature = temperature
        banned = {tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.bos_token_id} - {None}
        self.banned_tokens = sorted(banned)

    def sample(
        self, prompts: Sequence[list[int]], max_new_tokens: int, generators: Sequence[torch.Generator]
    ) -> list[str]:
        """Up to `max_new_tokens` tokens after each prompt (at least one token), decoded; row i's noise comes from
        ``generators[i]``."""
        eos = self.tokenizer.eos_token_id
        completions = generate(
            self.model,
            prompts,
            StopRules(max_new_tokens=max_new_tokens, eos_token_id=eos),
            vocab_size=len(self.tokenizer),
            temperature=self.temperature,
            row_generators=generators,
            banned_tokens=self.banned_tokens,
        )
        texts = [c.tokens[:-1] if c.stop_reason == "eos" else c.tokens for c in completions]  # the EOS is no text
        return self.tokenizer.batch_decode(texts, skip_special_tokens=True)
