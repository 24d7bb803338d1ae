"""The potential of a text, phi = reward score + drift term + fluency term, split by component and batched over slots.

phi(text) = reward(prompt, text) + drift_coef * (cos(text, draft) - 1) + fluency_coef * logprob(text), where cos is
the MiniLM sentence-embedding similarity to the episode's draft (so phi's drift term is 0 for the draft itself and
negative as the meaning drifts) and logprob the mean token log-probability under the env's LM (`FluencyReward`
with the env's own model). A dense reward pays the change of every component, so an episode's rewards sum to
phi(final) - phi(draft) minus the edit costs, whatever the path (potential-based shaping).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from textgen_env.edit.config import TextEditConfig
from textgen_env.rewards import FluencyReward, make_reward
from textgen_env.rewards.embedding import shared_encoder

__all__ = ["PotentialScorer"]


class PotentialScorer:
    """Scores texts into phi's components (see the module docstring).

    Args:
        config: the env settings (reward, drift_coef, fluency_coef, device).
        model: the env's LM, for the fluency term.
        tokenizer: its tokenizer.
    """

    def __init__(self, config: TextEditConfig, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self.config = config
        self.reward = make_reward(config.reward, config.reward_kwargs)
        if self.reward.needs_references:
            raise ValueError(f"Expected a reward without references for TextEdit-v0, got {self.reward.name!r}")
        self.fluency = (
            FluencyReward(model, tokenizer, device=config.device, min_logprob=-20.0) if config.fluency_coef else None
        )
        self.encoder = shared_encoder(config.device) if config.drift_coef else None

    @property
    def component_names(self) -> tuple[str, ...]:
        names = list(self.reward.component_names)
        if self.encoder is not None:
            names.append("drift")
        if self.fluency is not None:
            names.append("fluency")
        return tuple(names)

    def __call__(
        self, prompts: Sequence[str], texts: Sequence[str], drafts: Sequence[str], dones: Sequence[bool]
    ) -> dict[str, np.ndarray]:
        """phi's components for each text, each shaped ``(len(texts),)``."""
        if not texts:
            return {name: np.zeros(0) for name in self.component_names}
        parts = self.reward.components(list(prompts), list(texts), list(dones))
        if self.encoder is not None:
            changed = [i for i, (t, d) in enumerate(zip(texts, drafts)) if t != d]
            drift = np.zeros(len(texts))
            if changed:
                a = self.encoder.encode([texts[i] for i in changed])  # (C, H), unit rows
                b = self.encoder.encode([drafts[i] for i in changed])  # (C, H)
                drift[changed] = (a * b).sum(dim=1).double().numpy() - 1.0
            parts["drift"] = self.config.drift_coef * drift
        if self.fluency is not None:
            parts["fluency"] = self.config.fluency_coef * self.fluency(list(prompts), list(texts), list(dones))
        return parts
