"""SlotKVCache: per-slot cached stepping equals a plain forward over each slot's whole text."""

from __future__ import annotations

import inspect
import pickle
import warnings

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from textgen_env.kv import SlotKVCache, cache_keyword
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


@pytest.mark.parametrize("bf16_autocast", [False, True], ids=["float32", "bf16-autocast"])
@pytest.mark.parametrize("hold_rate", [0.0, 0.3], ids=["no-holds", "holds"])
@pytest.mark.parametrize("make_model", [tiny_model, _tiny_llama], ids=["gpt2", "llama"])
def test_cached_steps_with_random_restarts_equal_plain_forward(make_model, hold_rate, bf16_autocast):
    """In float32 to 1e-5; under bfloat16 autocast (keys and values then differ in dtype after RoPE) to bfloat16's
    precision, against the float32 forward."""
    model = make_model()
    atol, rtol = (5e-2, 5e-2) if bf16_autocast else (1e-5, 1e-4)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_autocast, cache_enabled=False)
    rng = np.random.default_rng(0)
    num_slots = 4
    cache = SlotKVCache(model, num_slots, output_hidden=True)
    streams = [list(rng.integers(3, 100, size=rng.integers(1, 9))) for _ in range(num_slots)]
    gaps = [0] * num_slots  # held steps since each slot's restart: masked columns inside its row
    with autocast:
        out = cache.advance(streams, [True] * num_slots)
    for _step in range(25):
        for i in range(num_slots):  # a held slot's outputs are those of its unchanged stream
            with torch.no_grad():
                plain = model(torch.tensor([streams[i]]), output_hidden_states=True)
            torch.testing.assert_close(out.logits[i], plain.logits[0, -1], atol=atol, rtol=rtol)
            torch.testing.assert_close(out.hidden[i], plain.hidden_states[-1][0, -1], atol=atol, rtol=rtol)
        reset = rng.random(num_slots) < 0.2
        hold = ~reset & (rng.random(num_slots) < hold_rate)
        tokens = []
        for i in range(num_slots):
            if reset[i]:
                streams[i] = list(rng.integers(3, 100, size=rng.integers(1, 12)))
                gaps[i] = 0
                tokens.append(streams[i])
            elif hold[i]:
                gaps[i] += not hold.all()  # when every slot is held nothing runs
                tokens.append([])
            else:
                token = int(rng.integers(3, 100))
                streams[i].append(token)
                tokens.append([token])
        with autocast:
            out = cache.advance(tokens, reset.tolist(), hold=hold.tolist())
    assert cache.columns == max(len(s) + g for s, g in zip(streams, gaps))  # unused columns are trimmed


def test_advance_validates_its_input():
    cache = SlotKVCache(tiny_model(), 2)
    with pytest.raises(ValueError, match=r"Expected tokens, reset and hold for 2 slots, got 1, 1 and 2"):
        cache.advance([[1]], [True], hold=[False, False])
    with pytest.raises(ValueError, match=r"Expected held slot 0 to be a started stream.*started=False"):
        cache.advance([[], [1]], [False, True], hold=[True, False])
    with pytest.raises(ValueError, match=r"Expected at least 1 token\(s\) for slot 1, got 0"):
        cache.advance([[1], []], [True, True])
    cache.advance([[1], [2]], [True, True])
    with pytest.raises(ValueError, match=r"Expected exactly 1 token\(s\) for slot 0, got 2"):
        cache.advance([[1, 2], [3]], [False, False])
    with pytest.raises(
        ValueError, match=r"Expected held slot 1 to be a started stream that does not reset, got reset=True"
    ):
        cache.advance([[1], [2]], [False, True], hold=[False, True])


def _peft_model():
    peft = pytest.importorskip("peft")
    config = peft.LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True)
    return peft.get_peft_model(tiny_model(), config)


@pytest.mark.parametrize("make_model", [tiny_model, _tiny_llama, _peft_model], ids=["gpt2", "llama", "peft-lora"])
def test_cached_forward_uses_no_deprecated_cache_argument(make_model):
    # transformers attributes this FutureWarning to its own module, so pyproject's filterwarnings cannot catch it
    model = make_model()
    wrapped = model.get_base_model() if hasattr(model, "get_base_model") else model
    assert cache_keyword(model) in inspect.signature(wrapped.forward).parameters  # a peft wrapper takes **kwargs
    cache = SlotKVCache(model, 2, output_hidden=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache.advance([[5, 6, 7], [8]], [True, True])
        cache.advance([[9], []], [False, False], hold=[False, True])
    deprecations = [
        str(w.message)
        for w in caught
        if issubclass(w.category, (FutureWarning, DeprecationWarning)) and "past_key_values" in str(w.message)
    ]
    assert deprecations == []


@pytest.mark.parametrize("make_model", [tiny_model, _tiny_llama], ids=["gpt2", "llama"])
def test_hidden_states_leave_no_hooks_and_the_model_stays_picklable(make_model):
    """``output_hidden_states=True`` makes transformers install permanent hooks (closures over a ContextVar) on the
    model: a user's model stepped by the env in hidden mode could then no longer be pickled (SB3's ``save``)."""
    model = make_model()
    cache = SlotKVCache(model, 2, output_hidden=True)
    out = cache.advance([[5, 6, 7], [8]], [True, True])
    out = cache.advance([[9], [10]], [False, False])
    assert out.hidden is not None and out.hidden.shape == (2, model.config.hidden_size)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    pickle.loads(pickle.dumps(model))
