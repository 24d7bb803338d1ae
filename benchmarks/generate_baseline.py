"""The baseline every speed benchmark compares against: ``model.generate`` sampling a fixed number of tokens."""

from __future__ import annotations

import time

import torch

__all__ = ["generate_rate"]


@torch.no_grad()
def generate_rate(model, tokenizer, prompts: list[str], tokens: int, repeats: int = 2) -> float:
    """Best-of-`repeats` tokens/s of ``model.generate`` sampling exactly `tokens` new tokens for each prompt
    (plain sampling: no top-k/top-p), after one warm-up call."""
    tokenizer.padding_side = "left"
    inputs = tokenizer(prompts, return_tensors="pt", padding=True)
    best = float("inf")
    for _ in range(repeats + 1):  # the first call warms up
        start = time.perf_counter()
        model.generate(
            **inputs,
            do_sample=True,
            top_k=0,
            top_p=1.0,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            pad_token_id=tokenizer.pad_token_id,
        )
        best = min(best, time.perf_counter() - start)
    return len(prompts) * tokens / best
