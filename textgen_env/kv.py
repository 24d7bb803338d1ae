"""Per-slot KV-cache stepping: one batched single-token forward per step for many independent token streams.

A *slot* is one row of a batch: one episode of one env. All slots advance together, one token per step, so the
cache is kept **right-aligned**: every slot's newest token sits in the last column and a step appends one column for
all slots. A slot that starts a new episode gets its prompt pre-filled in a separate forward (batched over the slots
that reset together) and written into its row, right-aligned; columns that no slot uses any more are trimmed, so
the cache never grows past the longest live episode. Position ids are passed explicitly, so left padding does not
shift positions. A *held* slot sits a step out: its new column is masked out and its position does not move, so
its next real step sees exactly the tokens it had (the masked column is a gap, like left padding), and its outputs
repeat its previous ones.

    cache = SlotKVCache(model, num_slots=2)
    out = cache.advance([[5, 6, 7], [8]], reset=[True, True])   # two prompts
    out = cache.advance([[9], [10]], reset=[False, False])       # one generated token each
    out = cache.advance([[11], []], reset=[False, False], hold=[False, True])  # slot 1 sits this step out
    out.logits.shape  # (2, vocab): next-token logits of each slot
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache as memoize
from typing import Any, Protocol, cast

import torch
from transformers import DynamicCache, PreTrainedModel

__all__ = ["SlotKVCache", "SlotStep", "cache_keyword", "forward_with_cache", "forward_with_last_hidden"]


@memoize
def _cache_keyword_of(model_class: type[torch.nn.Module]) -> str | None:
    parameters = inspect.signature(model_class.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in parameters:
            return name
    return None  # a wrapper that forwards **kwargs (e.g. a peft model): ask the model it wraps


def cache_keyword(model: PreTrainedModel) -> str:
    """The forward argument that takes the KV cache: ``cache`` (transformers >= 5.x) or ``past_key_values``.

    A wrapper whose forward passes ``**kwargs`` through (a peft ``PeftModel``) gets the keyword of the model it wraps,
    so a LoRA policy does not fall back to the deprecated name.
    """
    keyword = _cache_keyword_of(type(model))  # type: ignore[arg-type]  # mypy reads a class as its instances for Hashable
    base = getattr(model, "get_base_model", None)
    if keyword is None and callable(base) and base() is not model:
        return cache_keyword(base())
    return keyword or "past_key_values"


def forward_with_cache(model: PreTrainedModel, cache: DynamicCache | None, **inputs: Any) -> tuple[Any, DynamicCache]:
    """Run `model` with a KV cache under whichever argument name its transformers version uses."""
    outputs = model(**inputs, **{cache_keyword(model): cache}, use_cache=True)
    new_cache = getattr(outputs, "cache", None)
    if new_cache is None:
        new_cache = outputs.past_key_values
    return outputs, new_cache


def forward_with_last_hidden(
    model: PreTrainedModel, cache: DynamicCache | None, **inputs: Any
) -> tuple[Any, DynamicCache, torch.Tensor]:
    """`forward_with_cache` that also returns the last-layer hidden states the LM head reads, (B, S', H).

    They are taken by a forward pre-hook on the output embeddings, removed before returning, rather than with
    ``output_hidden_states=True``: transformers (5.x) answers that flag by installing permanent forward hooks on the
    model whose closures hold a ``ContextVar``, after which the model cannot be pickled any more (a user's model
    given to the env, then to SB3 in ``policy_kwargs``, broke ``ppo.save``). A model without output embeddings
    falls back to the flag.
    """
    head = model.get_output_embeddings()
    if head is None:
        outputs, new_cache = forward_with_cache(model, cache, **inputs, output_hidden_states=True)
        return outputs, new_cache, outputs.hidden_states[-1]
    captured: list[torch.Tensor] = []
    handle = head.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
    try:
        outputs, new_cache = forward_with_cache(model, cache, **inputs)
    finally:
        handle.remove()
    if len(captured) != 1:
        name = type(model).__name__
        raise RuntimeError(f"Expected the LM head of {name} to run once per forward, got {len(captured)} runs")
    return outputs, new_cache, captured[0]


class _KVLayer(Protocol):
    keys: torch.Tensor  # (B, heads, S, head_dim)
    values: torch.Tensor  # (B, heads, S, head_dim)


def _kv_layers(cache: DynamicCache) -> list[_KVLayer]:
    """The layers of a filled attention cache: transformers types their tensors as optional until the first update."""
    return cast(list[_KVLayer], cache.layers)


@dataclass
class SlotStep:
    """What one `SlotKVCache.advance` returns for every slot, at the slot's newest position."""

    logits: torch.Tensor
    """(B, V) next-token logits, float32."""
    hidden: torch.Tensor | None
    """(B, H) last-layer hidden state, float32; None unless the cache was built with ``output_hidden=True``."""


class SlotKVCache:
    """A batched KV cache over `num_slots` independent token streams (see the module docstring).

    Args:
        model: a causal LM (any ``PreTrainedModel`` whose forward takes ``position_ids`` and a cache).
        num_slots: the batch size B.
        output_hidden: also return the last-layer hidden state at each slot's newest position.
    """

    def __init__(self, model: PreTrainedModel, num_slots: int, *, output_hidden: bool = False) -> None:
        self.model = model
        self.num_slots = num_slots
        self.output_hidden = output_hidden
        self.device = next(model.parameters()).device
        self._cache: DynamicCache | None = None
        self._mask = torch.zeros((num_slots, 0), dtype=torch.long, device=self.device)  # (B, S) 1 = valid column
        self.lengths = torch.zeros(num_slots, dtype=torch.long, device=self.device)  # (B,) tokens held per slot
        self._last: SlotStep | None = None  # the latest outputs, repeated for held slots

    @property
    def columns(self) -> int:
        """S, the number of cache columns (the longest live slot)."""
        return self._mask.shape[1]

    @torch.inference_mode()
    def advance(
        self, tokens: Sequence[Sequence[int]], reset: Sequence[bool], hold: Sequence[bool] | None = None
    ) -> SlotStep:
        """Append tokens to every slot that is not held and return each slot's next-token outputs.

        Args:
            tokens: per slot, the tokens to append: exactly one for a continuing slot; the whole prompt (at least
                one token) for a slot with ``reset=True``, which forgets its previous tokens first; ignored for a
                held slot.
            reset: per slot, whether it starts a new stream.
            hold: per slot, whether it sits this step out: its stream and outputs stay exactly as they were.
        """
        hold = [False] * self.num_slots if hold is None else list(hold)
        if len(tokens) != self.num_slots or len(reset) != self.num_slots or len(hold) != self.num_slots:
            raise ValueError(
                f"Expected tokens, reset and hold for {self.num_slots} slots, got {len(tokens)}, {len(reset)} "
                f"and {len(hold)}"
            )
        for i in range(self.num_slots):
            if hold[i]:
                if reset[i] or self._last is None:
                    raise ValueError(
                        f"Expected held slot {i} to be a started stream that does not reset, got "
                        f"reset={bool(reset[i])}, started={self._last is not None}"
                    )
                continue
            expected = "at least 1" if reset[i] else "exactly 1"
            if (reset[i] and len(tokens[i]) < 1) or (not reset[i] and len(tokens[i]) != 1):
                raise ValueError(f"Expected {expected} token(s) for slot {i}, got {len(tokens[i])}")
        if all(hold):
            assert self._last is not None  # checked above: every held slot is a started stream
            return self._last
        restarting = [i for i in range(self.num_slots) if reset[i]]
        if restarting:
            self._restart(restarting, [list(tokens[i][:-1]) for i in restarting])
        last_tokens = [0 if hold[i] else tokens[i][-1] for i in range(self.num_slots)]
        held = torch.tensor(hold, dtype=torch.bool, device=self.device)
        return self._step(torch.tensor(last_tokens, dtype=torch.long, device=self.device), held)

    def _step(self, last_tokens: torch.Tensor, held: torch.Tensor) -> SlotStep:
        live = (~held).long()  # (B,) 1 for slots that take a token
        mask = torch.cat([self._mask, live[:, None]], dim=1)  # (B, S+1) a held slot's new column is a masked gap
        inputs = dict(
            input_ids=last_tokens[:, None],  # (B, 1)
            attention_mask=mask,
            position_ids=self.lengths[:, None],  # (B, 1)
        )
        hidden = None
        if self.output_hidden:
            outputs, self._cache, states = forward_with_last_hidden(self.model, self._cache, **inputs)
            hidden = states[:, -1].float()  # (B, H)
        else:
            outputs, self._cache = forward_with_cache(self.model, self._cache, **inputs)
        self._mask = mask
        self.lengths += live
        logits = outputs.logits[:, -1].float()  # (B, V)
        if self._last is not None and held.any():
            logits = torch.where(held[:, None], self._last.logits, logits)
            if hidden is not None:
                assert self._last.hidden is not None  # output_hidden is fixed, so every step carried hidden states
                hidden = torch.where(held[:, None], self._last.hidden, hidden)
        self._last = SlotStep(logits=logits, hidden=hidden)
        return self._last

    def _restart(self, slots: list[int], prefixes: list[list[int]]) -> None:
        """Clear `slots` and write their prefixes (all but the last prompt token) right-aligned into the cache."""
        index = torch.tensor(slots, dtype=torch.long, device=self.device)
        self._mask[index] = 0
        self.lengths[index] = torch.tensor([len(p) for p in prefixes], dtype=torch.long, device=self.device)
        longest = max(len(p) for p in prefixes)
        if longest > 0:
            prefix_cache = self._prefill(prefixes, longest)
            if longest > self.columns:
                self._pad_left(longest - self.columns, like=prefix_cache)
            start = self.columns - longest
            for row, slot in enumerate(slots):
                n = len(prefixes[row])
                if n:
                    self._mask[slot, self.columns - n :] = 1
            assert self._cache is not None  # columns >= longest > 0 were already cached, or _pad_left made them
            for layer, prefix_layer in zip(_kv_layers(self._cache), _kv_layers(prefix_cache)):
                # rows of the prefill batch are left-padded to `longest`, so they line up with the last columns
                layer.keys[index, :, start:] = prefix_layer.keys.to(layer.keys.dtype)
                layer.values[index, :, start:] = prefix_layer.values.to(layer.values.dtype)
        self._trim()

    def _prefill(self, prefixes: list[list[int]], longest: int) -> DynamicCache:
        input_ids = torch.zeros((len(prefixes), longest), dtype=torch.long, device=self.device)  # (R, P) left-padded
        mask = torch.zeros_like(input_ids)
        for row, prefix in enumerate(prefixes):
            if prefix:
                input_ids[row, longest - len(prefix) :] = torch.tensor(prefix, device=self.device)
                mask[row, longest - len(prefix) :] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        _, prefix_cache = forward_with_cache(
            self.model,
            None,
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            logits_to_keep=1,
        )
        return prefix_cache

    def _pad_left(self, extra: int, like: DynamicCache) -> None:
        self._mask = torch.cat([self._mask.new_zeros((self.num_slots, extra)), self._mask], dim=1)
        if self._cache is None:
            self._cache = DynamicCache()
            for prefix_layer in _kv_layers(like):
                _, heads, _, head_dim = prefix_layer.keys.shape
                shape = (self.num_slots, heads, extra, head_dim)
                zeros = prefix_layer.keys.new_zeros(shape)
                self._cache.update(zeros, prefix_layer.values.new_zeros(shape), len(self._cache.layers))
            return
        for layer in _kv_layers(self._cache):
            shape = (*layer.keys.shape[:2], extra, layer.keys.shape[3])
            layer.keys = torch.cat([layer.keys.new_zeros(shape), layer.keys], dim=2)  # each in its own dtype: under
            layer.values = torch.cat([layer.values.new_zeros(shape), layer.values], dim=2)  # autocast they differ

    def _trim(self) -> None:
        used = self._mask.any(dim=0).nonzero()
        first = int(used[0]) if len(used) else self.columns
        if first == 0:
            return
        self._mask = self._mask[:, first:]
        if self._cache is not None:
            for layer in _kv_layers(self._cache):
                layer.keys = layer.keys[:, :, first:]
                layer.values = layer.values[:, :, first:]
