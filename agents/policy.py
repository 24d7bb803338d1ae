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
from typing import cast

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from agents.functional import exact_kl_from_logits, selective_log_softmax
from agents.rollout import RolloutBatch
from agents.sampling import sample_tokens
from textgen_env.kv import SlotKVCache

__all__ = ["KeptMinibatch", "LMPolicy", "PolicyOutput"]


@dataclass
class PolicyOutput:
    """What `LMPolicy.score` returns for the completion positions of a batch."""

    logits: torch.Tensor
    """(B, T, V) float32 logits that predicted each completion token."""
    values: torch.Tensor | None
    """(B, T) value estimates of the states before each completion token (None without a value head)."""


@dataclass
class KeptMinibatch:
    """The forwards of an update's first minibatch, kept from `LMPolicy.score_reference` (``keep_rows``)."""

    rows: np.ndarray
    """The rows of the rollout it covers, in the minibatch's order."""
    policy: PolicyOutput
    """The policy's logits and values, with their autograd graph: the first step's loss backpropagates through them."""
    reference_logits: torch.Tensor
    """(B, T, V) the reference's logits at the same positions (no graph)."""


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
                lora_alpha=lora_alpha,  # type: ignore[arg-type]  # peft annotates int; it scales by alpha / r
                target_modules="all-linear",
                lora_dropout=0.0,
                fan_in_fan_out=conv1d,
            )
            model = cast(PreTrainedModel, get_peft_model(model, config))  # a PeftModel forwards the model's API
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
        values = None
        if self.value_head is not None:
            assert out.hidden is not None  # rollout_cache gives a value head its hidden states
            values = self.value_head(out.hidden.float()).squeeze(-1)
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
        self, batch: RolloutBatch, *, model: PreTrainedModel | None = None, temperature: float = 1.0
    ) -> PolicyOutput:
        """One forward over whole episodes: logits at the completion positions and the values of their states.

        The logits are divided by `temperature`, so that they are those of the policy that samples at it.
        """
        model = model or self.model
        input_ids = batch.input_ids.to(self.device)  # (B, P + T)
        attention_mask = batch.attention_mask.to(self.device)
        width_t = input_ids.shape[1] - batch.prompt_length
        positions = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
        want_hidden = self.value_head is not None and model is self.model
        with self.autocast():  # no weight cache: each forward casts the current float32 weights
            outputs = model(
                input_ids=input_ids,
                attention_mask=attention_mask,
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
            assert self.value_head is not None  # want_hidden asks for it
            hidden = outputs.hidden_states[-1][:, batch.prompt_length - 1 : -1]  # (B, T, H) states s_0..s_{T-1}
            values = self.value_head(hidden.float()).squeeze(-1)  # (B, T)
        return PolicyOutput(logits=logits, values=values)

    @torch.no_grad()
    def reference_logits(self, batch: RolloutBatch, *, temperature: float = 1.0) -> torch.Tensor:
        """(B, T, V) logits of the frozen reference at the completion positions, divided by `temperature`."""
        if self.lora_rank > 0:
            with self.model.disable_adapter():  # type: ignore[operator]  # a PeftModel when lora_rank > 0
                return self.score(batch, model=self.model, temperature=temperature).logits
        if not self._reference:
            raise ValueError("Expected a reference model for the KL term, got none; pass reference= to LMPolicy")
        return self.score(batch, model=self._reference[0], temperature=temperature).logits

    def score_reference(
        self,
        batch: RolloutBatch,
        *,
        temperature: float,
        chunk_size: int,
        keep_rows: np.ndarray | None = None,
    ) -> KeptMinibatch | None:
        """Fill ``batch.reference_logprobs`` and ``batch.kl``, and rescore ``batch.logprobs`` and ``batch.values``.

        One pass of the policy and the reference at `temperature`, `chunk_size` rows per forward: log ref(a_t|s_t)
        of the chosen tokens and the exact per-token KL(pi(.|s_t) || ref(.|s_t)), which needs the policy's whole
        distribution, so the policy runs here too; its log-probs and values from this same forward replace the
        rollout's. They are the same policy's numbers, but the KV-cached rollout and a whole-sequence forward differ
        by float rounding, and the k1 term log pi - log ref must be exactly 0 where the policy is the reference:
        whitened advantages amplify a 1e-7 residue into a push away from it
        (``tests/agents/test_kl_penalty.py::test_policy_at_the_reference_does_not_move``). All (N, T) on the CPU,
        0 on padding.

        With `keep_rows` (the update's first minibatch) those rows are scored first, as one forward with autograd,
        and returned with their reference logits: the update's first step uses that forward instead of running the
        same one again (the weights have not moved in between, and a forward gives the same numbers bit for bit
        with or without a graph and in any row order; `tests/agents/test_policy.py`). The other rows are scored
        without a graph in contiguous chunks.
        """
        n, width = len(batch), batch.completion_mask.shape[1]
        out = {name: torch.zeros((n, width)) for name in ("logprobs", "values", "reference_logprobs", "kl")}
        chunks: list[np.ndarray] = []
        rest = np.arange(n)
        if keep_rows is not None and len(keep_rows):
            chunks.append(np.asarray(keep_rows))
            rest = np.setdiff1d(rest, keep_rows)
        chunks += [rest[i : i + chunk_size] for i in range(0, len(rest), chunk_size)]
        kept = None
        for index, rows in enumerate(chunks):
            part = batch.select(rows)
            t = part.completion_mask.shape[1]
            actions = part.actions.to(self.device)
            keep = index == 0 and keep_rows is not None and len(keep_rows) > 0
            with torch.set_grad_enabled(keep):
                scored = self.score(part, temperature=temperature)  # (B, t, V) logits, (B, t) values
            ref_logits = self.reference_logits(part, temperature=temperature)  # (B, t, V), no graph
            with torch.no_grad():
                out["logprobs"][rows, :t] = selective_log_softmax(scored.logits, actions).cpu()
                if scored.values is not None:
                    out["values"][rows, :t] = scored.values.float().cpu()
                out["reference_logprobs"][rows, :t] = selective_log_softmax(ref_logits, actions).cpu()
                out["kl"][rows, :t] = exact_kl_from_logits(scored.logits, ref_logits).cpu()
            if keep:
                kept = KeptMinibatch(rows=rows, policy=scored, reference_logits=ref_logits)
        for name, value in out.items():
            setattr(batch, name, value * batch.completion_mask)
        return kept

    @torch.no_grad()
    def act(self, obs: dict, deterministic: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Actions for token observations (one or a batch), by a plain forward over the unpadded texts."""
        ids = torch.as_tensor(obs["input_ids"]).reshape(-1, obs["input_ids"].shape[-1]).to(self.device)
        mask = torch.as_tensor(obs["attention_mask"]).reshape(ids.shape).long().to(self.device)
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1).logits
        logits = logits[:, -1, : self.vocab_size].float()
        return sample_tokens(logits, temperature=0.0 if deterministic else 1.0, generator=generator)
