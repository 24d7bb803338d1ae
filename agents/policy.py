"""`LMPolicy`: a Hugging Face causal LM as an RL policy, with a value head on its own trunk and optional LoRA.

* **Rollouts** step all env slots together through a `SlotKVCache`: one token's forward per step, batched.
* **Updates** score whole episodes in one forward pass: sequences are laid out as a left-padded prompt followed by a
  right-padded completion, so the logits that predict completion token t sit at the same column for every row and
  ``logits_to_keep`` skips the LM head on prompt positions.
* **Reference** for the KL penalty: with LoRA, the same weights with the adapters disabled (no copy); otherwise a
  frozen model given by the caller (for example the env's own model) or, failing that, one frozen copy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from textgen_env.kv import SlotKVCache

__all__ = ["EpisodeTensors", "LMPolicy", "PolicyOutput"]


@dataclass
class EpisodeTensors:
    """Padded tensors of B episodes: prompt (left-padded) then completion (right-padded) in one row."""

    input_ids: torch.Tensor
    """(B, P + T) token ids."""
    attention_mask: torch.Tensor
    """(B, P + T) 1 on real tokens."""
    completion_mask: torch.Tensor
    """(B, T) 1 on real completion tokens (the actions)."""
    prompt_length: int
    """P, the padded prompt width."""

    @property
    def actions(self) -> torch.Tensor:
        """(B, T) the completion tokens (padding where completion_mask is 0)."""
        return self.input_ids[:, self.prompt_length :]

    @classmethod
    def from_token_lists(
        cls, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_token_id: int, device=None
    ) -> EpisodeTensors:
        """Lay out prompts and completions (lists of token ids) as one padded batch."""
        width_p = max(len(p) for p in prompts)
        width_t = max(max(len(c) for c in completions), 1)
        batch = len(prompts)
        input_ids = torch.full((batch, width_p + width_t), pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((batch, width_p + width_t), dtype=torch.long)
        for row, (prompt, completion) in enumerate(zip(prompts, completions)):
            input_ids[row, width_p - len(prompt) : width_p] = torch.as_tensor(list(prompt))
            attention_mask[row, width_p - len(prompt) : width_p] = 1
            if completion:
                input_ids[row, width_p : width_p + len(completion)] = torch.as_tensor(list(completion))
                attention_mask[row, width_p : width_p + len(completion)] = 1
        completion_mask = attention_mask[:, width_p:].clone()
        return cls(
            input_ids.to(device), attention_mask.to(device), completion_mask.to(device).bool(), prompt_length=width_p
        )


@dataclass
class PolicyOutput:
    """What `LMPolicy.score` returns for the completion positions of a batch."""

    logits: torch.Tensor
    """(B, T, V) float32 logits that predicted each completion token."""
    values: torch.Tensor | None
    """(B, T) value estimates of the states before each completion token (None without a value head)."""


class LMPolicy(nn.Module):
    """A causal LM whose next-token distribution is the policy, plus a value head on the same trunk.

    Args:
        model: the trainable causal LM (its weights are updated in place).
        tokenizer: its tokenizer (sets the action vocabulary: ``len(tokenizer)``).
        value_head: add a scalar value head on the last hidden state.
        lora_rank: > 0 trains LoRA adapters of this rank (requires ``peft``) instead of all weights.
        lora_alpha: LoRA scaling numerator.
        reference: a frozen model with the same vocabulary for the KL penalty; ignored with LoRA (the reference
            is the base with adapters disabled); without one (and without LoRA) `reference_logits` is unavailable.
        bf16_autocast: `autocast` runs the forwards in bfloat16 (the weights stay float32).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        value_head: bool = True,
        lora_rank: int = 0,
        lora_alpha: float = 16.0,
        reference: PreTrainedModel | None = None,
        bf16_autocast: bool = False,
    ) -> None:
        super().__init__()
        self.bf16_autocast = bf16_autocast
        self.tokenizer = tokenizer
        self.vocab_size = len(tokenizer)
        self.lora_rank = lora_rank
        if lora_rank > 0:
            try:
                from peft import LoraConfig, get_peft_model
            except ImportError as error:
                from gymnasium.error import DependencyNotInstalled

                raise DependencyNotInstalled('LoRA needs peft. Run: pip install "textgen-env[train]"') from error
            conv1d = any(type(m).__name__ == "Conv1D" for m in model.modules())  # GPT-2 stores weights transposed
            config = LoraConfig(
                r=lora_rank,
                lora_alpha=lora_alpha,
                target_modules="all-linear",
                lora_dropout=0.0,
                fan_in_fan_out=conv1d,
            )
            model = get_peft_model(model, config)
        else:
            model.requires_grad_(True)
        self.model = model
        hidden = model.config.get_text_config().hidden_size
        self.value_head = nn.Linear(hidden, 1) if value_head else None
        if self.value_head is not None:
            nn.init.zeros_(self.value_head.weight)
            nn.init.zeros_(self.value_head.bias)
        # kept in a list so that it is not a submodule (not trained, not saved); only ever run under no_grad
        self._reference = [reference] if reference is not None and lora_rank == 0 else []
        self.model.eval()  # no dropout: rollout and update log-probs must agree

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters the optimizer updates (LoRA adapters or all LM weights, plus the value head)."""
        return [p for p in self.parameters() if p.requires_grad]

    # ------------------------------------------------------------------------------------------------ rollouts
    def rollout_cache(self, num_slots: int) -> SlotKVCache:
        """A KV cache over `num_slots` env slots for `rollout_step`."""
        return SlotKVCache(self.model, num_slots, output_hidden=self.value_head is not None)

    @torch.no_grad()
    def rollout_step(
        self, cache: SlotKVCache, tokens: Sequence[Sequence[int]], restart: Sequence[bool]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Feed each slot its new tokens; return (B, V) next-token logits and (B,) values (None w/o value head)."""
        with self.autocast():
            out = cache.advance(tokens, restart)
        values = self.value_head(out.hidden.float()).squeeze(-1) if self.value_head is not None else None
        return out.logits[:, : self.vocab_size].float(), values

    @contextlib.contextmanager
    def float32(self) -> Iterator[None]:
        """Forwards in float32 inside, whatever ``bf16_autocast`` says: evaluations measure the float32 policy."""
        saved, self.bf16_autocast = self.bf16_autocast, False
        try:
            yield
        finally:
            self.bf16_autocast = saved

    def autocast(self) -> torch.autocast:
        """The context of every forward (rollout steps, scoring): bfloat16 autocast with ``bf16_autocast``."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16_autocast, cache_enabled=False)

    # -------------------------------------------------------------------------------------------------- updates
    def score(
        self, batch: EpisodeTensors, *, model: PreTrainedModel | None = None, temperature: float = 1.0
    ) -> PolicyOutput:
        """One forward over whole episodes: logits at the completion positions and the values of their states.

        The logits are divided by `temperature`, so that they are those of the policy that samples at it.
        """
        model = model or self.model
        width_t = batch.input_ids.shape[1] - batch.prompt_length
        positions = (batch.attention_mask.cumsum(dim=1) - 1).clamp(min=0)
        want_hidden = self.value_head is not None and model is self.model
        with self.autocast():  # no weight cache: each forward casts the current float32 weights
            outputs = model(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                position_ids=positions,
                logits_to_keep=width_t + 1,
                output_hidden_states=want_hidden,
                use_cache=False,
            )
        logits = outputs.logits[:, :-1, : self.vocab_size].float()  # (B, T, V): position P-1+t predicts token t
        if temperature != 1.0:
            logits = logits / temperature
        values = None
        if want_hidden:
            hidden = outputs.hidden_states[-1][:, batch.prompt_length - 1 : -1]  # (B, T, H) states s_0..s_{T-1}
            values = self.value_head(hidden.float()).squeeze(-1)  # (B, T)
        return PolicyOutput(logits=logits, values=values)

    @torch.no_grad()
    def reference_logits(self, batch: EpisodeTensors, *, temperature: float = 1.0) -> torch.Tensor:
        """(B, T, V) logits of the frozen reference at the completion positions, divided by `temperature`."""
        if self.lora_rank > 0:
            with self.model.disable_adapter():
                return self.score(batch, model=self.model, temperature=temperature).logits
        if not self._reference:
            raise ValueError("Expected a reference model for the KL term, got none; pass reference= to LMPolicy")
        return self.score(batch, model=self._reference[0], temperature=temperature).logits

    @torch.no_grad()
    def act(self, obs: dict, deterministic: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Actions for token observations (one or a batch), by a plain forward over the unpadded texts."""
        from agents.sampling import sample_tokens

        ids = torch.as_tensor(obs["input_ids"]).reshape(-1, obs["input_ids"].shape[-1]).to(self.device)
        mask = torch.as_tensor(obs["attention_mask"]).reshape(ids.shape).long().to(self.device)
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1).logits
        logits = logits[:, -1, : self.vocab_size].float()
        return sample_tokens(logits, temperature=0.0 if deterministic else 1.0, generator=generator)
