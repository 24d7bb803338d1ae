"""SlotKVCache: per-slot cached stepping equals a plain forward over each slot's whole text."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from textgen_env.kv import SlotKVCache
from textgen_env.testing import tiny_model


def _tiny_llama():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=142,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("make_model", [tiny_model, _tiny_llama], ids=["gpt2", "llama"])
def test_cached_steps_with_random_restarts_equal_plain_forward(make_model):
    model = make_model()
    rng = np.random.default_rng(0)
    num_slots = 4
    cache = SlotKVCache(model, num_slots, output_hidden=True)
    streams = [list(rng.integers(3, 100, size=rng.integers(1, 9))) for _ in range(num_slots)]
    out = cache.advance(streams, [True] * num_slots)
    for _step in range(25):
        for i in range(num_slots):
            with torch.no_grad():
                plain = model(torch.tensor([streams[i]]), output_hidden_states=True)
            torch.testing.assert_close(out.logits[i], plain.logits[0, -1], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(out.hidden[i], plain.hidden_states[-1][0, -1], atol=1e-5, rtol=1e-4)
        reset = rng.random(num_slots) < 0.2
        tokens = []
        for i in range(num_slots):
            if reset[i]:
                streams[i] = list(rng.integers(3, 100, size=rng.integers(1, 12)))
                tokens.append(streams[i])
            else:
                token = int(rng.integers(3, 100))
                streams[i].append(token)
                tokens.append([token])
        out = cache.advance(tokens, reset.tolist())
    assert cache.columns <= max(len(s) for s in streams)  # unused columns are trimmed


def test_advance_validates_its_input():
    cache = SlotKVCache(tiny_model(), 2)
    with pytest.raises(ValueError, match=r"Expected tokens and reset for 2 slots, got 1 and 1"):
        cache.advance([[1]], [True])
    with pytest.raises(ValueError, match=r"Expected at least 1 token\(s\) for slot 1, got 0"):
        cache.advance([[1], []], [True, True])
    cache.advance([[1], [2]], [True, True])
    with pytest.raises(ValueError, match=r"Expected exactly 1 token\(s\) for slot 0, got 2"):
        cache.advance([[1, 2], [3]], [False, False])
