"""Rewards from neural models: fluency under a frozen reference causal LM, and any sequence-classification model.

Both load their model once, lazily, on the first call (or take an instance), run it in eval mode under
``torch.inference_mode`` and score a batch with padded forwards of up to `batch_size` texts, longest-first
sorted so that padding stays small.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from textgen_env.models import load_model, prepare_tokenizer
from textgen_env.rewards.base import Reward

__all__ = ["ClassifierReward", "FluencyReward"]

ModelSpec = str | os.PathLike | PreTrainedModel | None
TokenizerSpec = str | os.PathLike | PreTrainedTokenizerBase | None


def _check_spec(model: Any, tokenizer: Any, model_required: bool) -> None:
    if not (isinstance(model, (str, os.PathLike, PreTrainedModel)) or (model is None and not model_required)):
        expected = "a model name, a local path or a PreTrainedModel" + ("" if model_required else " or None")
        raise TypeError(f"Expected model to be {expected}, got {type(model).__name__}")
    if tokenizer is not None and not isinstance(tokenizer, (str, os.PathLike, PreTrainedTokenizerBase)):
        raise TypeError(
            f"Expected tokenizer to be a tokenizer name, a local path, a PreTrainedTokenizerBase or None, got "
            f"{type(tokenizer).__name__}"
        )


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Expected {name} to be a positive int, got {value!r}")
    return value


def _max_length(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int:
    """The longest input both the model's position embeddings and the tokenizer allow."""
    limits = [
        value
        for value in (getattr(model.config, key, None) for key in ("max_position_embeddings", "n_positions"))
        if isinstance(value, int) and value > 0
    ]
    if 0 < tokenizer.model_max_length < 1_000_000:  # transformers uses ~1e30 for "no limit"
        limits.append(int(tokenizer.model_max_length))
    return min(limits) if limits else 1024


def _batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (longest first), so that padding stays small."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def _right_padded(encoded: Any, pad_id: int) -> dict[str, torch.Tensor]:
    """Pad tokenized rows into ``(B, T)`` tensors; a row with no tokens (empty text under a tokenizer that adds no
    special tokens) becomes one pad token, so that no row is fully masked and no batch is zero tokens wide."""
    rows = [list(ids) or [pad_id] for ids in encoded["input_ids"]]
    width = max(len(ids) for ids in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T)
    for row, ids in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
    padded = {"input_ids": input_ids, "attention_mask": attention_mask}
    if "token_type_ids" in encoded:
        token_type_ids = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T)
        for row, types in enumerate(encoded["token_type_ids"]):
            token_type_ids[row, : len(types)] = torch.tensor(types, dtype=torch.long)
        padded["token_type_ids"] = token_type_ids
    return padded


class FluencyReward(Reward):
    """Mean log-probability per token of the completion given the prompt, under a frozen reference causal LM.

    Score = mean over completion tokens of log p_ref(token | prompt, earlier tokens), clipped below at
    `min_logprob` (default -20, so that one garbled completion cannot dominate a batch). Range [min_logprob, 0]:
    0 would be a completion the reference model is certain of; fluent text under a small LM scores around -2 to
    -4. An empty completion scores `min_logprob`, so that saying nothing is never the most fluent answer. Prompt and
    completion are tokenized separately and joined, as the env generates them; inputs longer than the model allows
    lose their earliest tokens. Use it (lightly weighted) to keep a policy's text natural while another reward
    pulls it elsewhere.

    Args:
        model: the reference model: a name, a local path, a ``PreTrainedModel`` (used as is; pass a copy, not the
            policy being trained), or ``None`` for the embedded default model (see `textgen_env.models.load_model`).
        tokenizer: its tokenizer (instance, name or path); ``None`` loads the model's own.
        device: where to run the model.
        batch_size: texts per forward pass.
        min_logprob: the floor of the score, a negative number.

    >>> from textgen_env.testing import tiny_model_and_tokenizer
    >>> model, tokenizer = tiny_model_and_tokenizer()
    >>> scores = FluencyReward(model, tokenizer)(["the movie was"], ["great fun ."], [True])
    >>> bool(-20 <= scores[0] < 0)
    True
    """

    name = "fluency"

    def __init__(
        self,
        model: ModelSpec = None,
        tokenizer: TokenizerSpec = None,
        *,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
        min_logprob: float = -20.0,
    ) -> None:
        _check_spec(model, tokenizer, model_required=False)
        if (
            isinstance(min_logprob, bool)
            or not isinstance(min_logprob, (int, float))
            or not -math.inf < min_logprob < 0
        ):
            raise ValueError(f"Expected min_logprob to be a finite negative number, got {min_logprob!r}")
        self.model_spec = model
        self.tokenizer_spec = tokenizer
        self.device = torch.device(device)
        self.batch_size = _check_positive_int("batch_size", batch_size)
        self.min_logprob = float(min_logprob)
        self.model: PreTrainedModel | None = None
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        with self._lock:
            if self.model is None or self.tokenizer is None:
                # An instance keeps its dtype; a checkpoint loads in float32, the fast and exact choice on CPU.
                dtype = None if isinstance(self.model_spec, PreTrainedModel) else torch.float32
                self.model, self.tokenizer = load_model(
                    self.model_spec, tokenizer=self.tokenizer_spec, device=self.device, dtype=dtype
                )
        return self.model, self.tokenizer

    def _token_ids(
        self, prompts: Sequence[str], completions: Sequence[str], max_length: int
    ) -> list[tuple[list[int], int]]:
        """Per pair: the joined ids (at most `max_length`) and how many of the last ones are completion tokens."""
        tokenizer = self.tokenizer
        assert tokenizer is not None
        all_prompt_ids = tokenizer(list(prompts))["input_ids"]
        all_completion_ids = tokenizer(list(completions), add_special_tokens=False)["input_ids"]
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        encoded = []
        for prompt_ids, completion_ids in zip(all_prompt_ids, all_completion_ids):
            if not prompt_ids and start is not None:  # the first completion token needs context to be predicted from
                prompt_ids = [start]
            ids = (list(prompt_ids) + list(completion_ids))[-max_length:]
            encoded.append((ids, max(0, min(len(completion_ids), len(ids) - 1))))
        return encoded

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        if not completions:
            return np.zeros(0)
        model, tokenizer = self._load()
        encoded = self._token_ids(prompts, completions, _max_length(model, tokenizer))
        scores = np.full(len(completions), self.min_logprob)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        device = next(model.parameters()).device
        for candidates in _batches([len(ids) for ids, _ in encoded], self.batch_size):
            batch = [i for i in candidates if encoded[i][1] > 0]  # nothing to score: keeps the floor
            if not batch:
                continue
            inputs = _right_padded({"input_ids": [encoded[i][0] for i in batch]}, pad_id)
            scored = torch.zeros(inputs["input_ids"][:, 1:].shape, dtype=torch.bool)  # (B, T-1): predicts completion
            for row, i in enumerate(batch):
                ids, count = encoded[i]
                scored[row, len(ids) - 1 - count : len(ids) - 1] = True
            with torch.inference_mode():
                input_ids, attention_mask = inputs["input_ids"].to(device), inputs["attention_mask"].to(device)
                logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()  # (B, T-1, V)
                targets = input_ids[:, 1:].unsqueeze(-1)  # (B, T-1, 1): position t predicts token t+1
                token_logprobs = logits.gather(-1, targets).squeeze(-1) - logits.logsumexp(dim=-1)  # (B, T-1)
                token_logprobs = token_logprobs.cpu()
                means = (token_logprobs * scored).sum(dim=1) / scored.sum(dim=1)  # (B,)
            scores[batch] = np.maximum(means.double().numpy(), self.min_logprob)
        return scores


class ClassifierReward(Reward):
    """The probability that a Hugging Face sequence classifier gives to one `label` for the completion.

    Score = softmax(logits)[label]; for a single-logit or multi-label model, sigmoid(logits)[label]. Range [0, 1].
    Any ``AutoModelForSequenceClassification`` works (sentiment, toxicity, topic, a trained reward model), with its
    own tokenizer, which need not be the policy's.

    Args:
        model: a name, a local path or a ``PreTrainedModel`` (sequence classification).
        label: the label to reward, by name (as in the model's ``config.id2label``) or index. An unknown label
            raises ValueError listing the model's labels: at construction for a model instance, else on first call.
        tokenizer: its tokenizer (instance, name or path); ``None`` loads the model's own. A tokenizer without a
            pad token pads with its EOS token, and a model without ``config.pad_token_id`` is given the tokenizer's.
        include_prompt: classify the (prompt, completion) pair, as reward models of dialogue do, instead of the
            completion alone.
        device: where to run the model.
        batch_size: texts per forward pass.

    >>> from transformers import GPT2Config, GPT2ForSequenceClassification
    >>> from textgen_env.testing import tiny_tokenizer
    >>> tokenizer = tiny_tokenizer()
    >>> config = GPT2Config(vocab_size=len(tokenizer), n_embd=16, n_layer=1, n_head=2, bos_token_id=2,
    ...                     eos_token_id=2, pad_token_id=0, id2label={0: "negative", 1: "positive"})
    >>> reward = ClassifierReward(GPT2ForSequenceClassification(config), label="positive", tokenizer=tokenizer)
    >>> bool(0 <= reward(["Review:"], ["a good film"], [True])[0] <= 1)
    True
    """

    name = "classifier"

    def __init__(
        self,
        model: ModelSpec,
        label: str | int,
        tokenizer: TokenizerSpec = None,
        *,
        include_prompt: bool = False,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
    ) -> None:
        _check_spec(model, tokenizer, model_required=True)
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise TypeError(f"Expected label to be a label name (str) or index (int), got {type(label).__name__}")
        self.model_spec = model
        self.tokenizer_spec = tokenizer
        self.label = label
        self.include_prompt = bool(include_prompt)
        self.device = torch.device(device)
        self.batch_size = _check_positive_int("batch_size", batch_size)
        self.model: PreTrainedModel | None = None
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.label_index: int | None = None
        self._lock = threading.Lock()
        if isinstance(model, PreTrainedModel):
            self.label_index = self._label_index(model)

    def _label_index(self, model: PreTrainedModel) -> int:
        id2label = {int(index): str(name) for index, name in (model.config.id2label or {}).items()}
        count = cast(int, model.config.num_labels)  # the config's num_labels property is always set
        labels = [id2label.get(index, f"LABEL_{index}") for index in range(count)]
        if isinstance(self.label, int) and 0 <= self.label < count:
            return self.label
        if isinstance(self.label, str):
            if self.label in labels:
                return labels.index(self.label)
            folded = [name.lower() for name in labels]
            if folded.count(self.label.lower()) == 1:
                return folded.index(self.label.lower())
        raise ValueError(
            f"Expected label to be one of the model's labels {labels} or an index 0..{count - 1}, got {self.label!r}"
        )

    def _load(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        with self._lock:
            if self.model is None or self.tokenizer is None:
                from transformers import AutoModelForSequenceClassification, AutoTokenizer

                model = self.model_spec
                if not isinstance(model, PreTrainedModel):
                    try:
                        model = AutoModelForSequenceClassification.from_pretrained(model)
                    except (OSError, ValueError) as cause:
                        raise OSError(
                            f"Could not load the classifier {os.fspath(cast(str, model))!r}: pass a local folder with "
                            f"config.json and weights, or a model name in the local Hugging Face cache. Cause: {cause}"
                        ) from cause
                    self.label_index = self._label_index(model)
                tokenizer = self.tokenizer_spec
                if not isinstance(tokenizer, PreTrainedTokenizerBase):
                    source = tokenizer if tokenizer is not None else getattr(model.config, "_name_or_path", "")
                    if not source:
                        raise ValueError(
                            "Expected a tokenizer for a classifier instance without a saved name_or_path, got "
                            "tokenizer=None; pass tokenizer=..."
                        )
                    tokenizer = AutoTokenizer.from_pretrained(source)
                prepare_tokenizer(tokenizer)
                if model.config.pad_token_id is None:
                    model.config.pad_token_id = tokenizer.pad_token_id  # GPT-style heads find the last token by it
                # transformers' wrapped `to` is typed as an unbound function, hence the ignore
                self.model, self.tokenizer = model.to(self.device).eval(), tokenizer  # type: ignore[arg-type]  # see above
        return self.model, self.tokenizer

    def probabilities(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """Every label's probability for each completion: shape ``(len(completions), num_labels)``."""
        model, tokenizer = self._load()
        max_length = _max_length(model, tokenizer)
        multi_label = model.config.num_labels == 1 or model.config.problem_type == "multi_label_classification"
        result = np.zeros((len(completions), cast(int, model.config.num_labels)))  # always set
        device = next(model.parameters()).device
        lengths = [len(p) * self.include_prompt + len(c) for p, c in zip(prompts, completions)]
        for batch in _batches(lengths, self.batch_size):
            texts = [completions[i] for i in batch]
            pairs = [prompts[i] for i in batch] if self.include_prompt else None
            encoded = tokenizer(
                *((pairs, texts) if pairs is not None else (texts,)), truncation=True, max_length=max_length
            )
            inputs = {key: value.to(device) for key, value in _right_padded(encoded, tokenizer.pad_token_id).items()}
            with torch.inference_mode():
                logits = model(**inputs).logits.float()  # (B, num_labels)
                probabilities = logits.sigmoid() if multi_label else logits.softmax(dim=-1)
            result[batch] = probabilities.double().cpu().numpy()
        return result

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        if not completions:
            return np.zeros(0)
        probabilities = self.probabilities(prompts, completions)
        assert self.label_index is not None
        return probabilities[:, self.label_index]
