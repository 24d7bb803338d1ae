"""Token sampling for the agents: the env side's exact inverse-CDF sampler (`textgen_env.generation.sample_tokens`).

The env owns the one sampler (its own generation uses it too, and the env never imports `agents`); agents sample
through this name, so a rollout and an evaluation draw their tokens exactly as the env's generation does.
"""

from __future__ import annotations

from textgen_env.generation import sample_tokens

__all__ = ["sample_tokens"]
