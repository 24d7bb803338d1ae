"""Accuracy of a policy on a task's held-out items: at T = 1 (k samples), greedy, pass@k, format, length, KL.

`held_out_items` takes items from the task's ``eval`` split (never trained on), a fixed number per difficulty.
`evaluate_task` samples ``samples_per_item`` completions of each item with the env's stop rules and scores them with
the env's task; the random numbers depend only on ``seed`` and the position, so two evaluations with the same seed
(before and after training) draw the same uniforms for the same (item, sample), and `paired_task_gain` compares them
item by item. Every standard error treats an item (the mean of its samples) as one independent unit.

With an env that has tools, the completions are sampled by stepping the env (`agents.episode_loop.run_episodes`,
each item given by a reset option), so that calls run and their results are inserted as in training; the score is
the env's own, the KL is summed over the policy's tokens only (never the inserted ones), and ``tool_calls`` counts
each completion's calls (``tool_use`` and ``tool_calls`` in the summary).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import torch

from agents.episode_loop import run_episodes
from agents.evaluation.statistics import mean_with_error, paired_difference
from agents.evaluation.textgen import batch_generator, completion_kls, generate_completions
from agents.functional import exact_kl_from_logits, masked_sum
from agents.policy import LMPolicy
from agents.rollout import Episode, RolloutBatch
from agents.sampling import sample_tokens
from textgen_env import TextGenVectorEnv
from textgen_env.tasks import Task, TaskItem, TaskSampler

__all__ = ["TaskEvalResult", "evaluate_task", "held_out_items", "paired_task_gain"]


def held_out_items(
    task: Task, *, difficulties: Sequence[int], items_per_difficulty: int, seed: int, max_misses: int = 2000
) -> list[TaskItem]:
    """Up to `items_per_difficulty` items of distinct content per level from the task's ``eval`` split (the same for
    a seed); a level with fewer distinct held-out items (single-digit sums: about 20) gives all it has, which stops
    after `max_misses` draws in a row bring nothing new."""
    items: list[TaskItem] = []
    for level in difficulties:
        sampler = TaskSampler(task, seed=seed, split="eval", difficulty=level)
        seen: set[str] = set()
        misses = 0
        while len(seen) < items_per_difficulty and misses < max_misses:
            item = sampler.next()
            if item.canonical in seen:
                misses += 1
                continue
            seen.add(item.canonical)
            items.append(item)
            misses = 0
    return items


def _rate(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean and SE of per-item values (items are the independent units)."""
    stats = mean_with_error(values)
    return {"mean": stats.mean, "se": stats.se}


@dataclass
class TaskEvalResult:
    """Per-item outcomes of `evaluate_task` (lists indexed by item; sampled ones by item, then sample)."""

    task: str
    samples_per_item: int
    temperature: float
    seed: int
    difficulties: list[int]
    questions: list[str]
    answers: list[str]
    sampled_correct: list[list[float]]
    sampled_format: list[list[float]]
    greedy_correct: list[float]
    greedy_format: list[float]
    kls: list[list[float]]
    """Summed exact KL(policy || reference) of each sampled completion, nats (at `temperature`)."""
    lengths: list[list[int]]
    """Tokens of each sampled completion."""
    samples: list[dict[str, Any]] = field(default_factory=list)
    """Question, reference answer, the first sampled completion and the greedy one, per item."""
    tool_calls: list[list[float]] | None = None
    """Tool calls of each sampled completion (an env with tools); None without tools."""

    @property
    def num_items(self) -> int:
        return len(self.questions)

    def _per_item(self, name: str) -> np.ndarray:
        """(items,) per-item value of a measure: accuracy, pass_at_k, format_rate, greedy_accuracy, ..."""
        sampled: dict[str, Sequence[Sequence[float]]] = {
            "accuracy": self.sampled_correct,
            "format_rate": self.sampled_format,
            "kl": self.kls,
            "length": self.lengths,
        }
        if name in sampled:
            return np.array([np.mean(row) for row in sampled[name]], dtype=np.float64)
        if name == "pass_at_k":
            return np.array([float(max(row)) for row in self.sampled_correct])
        if name in ("tool_use", "tool_calls"):
            if self.tool_calls is None:
                raise ValueError(f"Expected an evaluation with tools for {name!r}, got one without")
            used = name == "tool_use"
            return np.array([np.mean([float(c > 0) if used else c for c in row]) for row in self.tool_calls])
        return np.asarray({"greedy_accuracy": self.greedy_correct, "greedy_format_rate": self.greedy_format}[name])

    MEASURES = ("accuracy", "greedy_accuracy", "pass_at_k", "format_rate", "greedy_format_rate", "length", "kl")
    """What `summary` reports, each as mean and SE over items."""
    TOOL_MEASURES = ("tool_use", "tool_calls")
    """With tools, also: the share of sampled completions that call a tool, and their calls per completion."""

    def summary(self) -> dict[str, Any]:
        """Each measure's mean and SE over items, overall and by difficulty, with the sizes behind them."""
        out: dict[str, Any] = {
            "task": self.task,
            "items": self.num_items,
            "samples_per_item": self.samples_per_item,
            "temperature": self.temperature,
            "seed": self.seed,
        }
        levels = np.asarray(self.difficulties)
        for name in self.MEASURES + (self.TOOL_MEASURES if self.tool_calls is not None else ()):
            stats = _rate(self._per_item(name))
            out[name], out[f"{name}_se"] = stats["mean"], stats["se"]
        out["by_difficulty"] = {
            str(level): {
                "items": int((levels == level).sum()),
                **{name: _rate(self._per_item(name)[levels == level]) for name in self.MEASURES},
            }
            for level in sorted(set(self.difficulties))
        }
        return out

    def to_dict(self) -> dict[str, Any]:
        """The summary and every per-item value, JSON-ready (`from_dict` restores it)."""
        return {"summary": self.summary(), **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskEvalResult:
        return cls(**{key: value for key, value in data.items() if key != "summary"})


def evaluate_task(
    policy: LMPolicy,
    env: TextGenVectorEnv,
    items: Sequence[TaskItem],
    *,
    samples_per_item: int = 8,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 32,
) -> TaskEvalResult:
    """Score `policy` on `items` with `env`'s task, prompt rendering and stop rules (see the module docstring).

    The forwards run in float32 even for a policy trained with ``bf16_autocast``.
    """
    if env.task is None:
        raise ValueError("Expected an env built with task=..., got one without a task")
    if isinstance(samples_per_item, bool) or not isinstance(samples_per_item, int) or samples_per_item < 1:
        raise ValueError(f"Expected samples_per_item to be an int >= 1, got {samples_per_item!r}")
    if not items:
        raise ValueError("Expected at least one item to evaluate, got none")
    task, k = env.task, samples_per_item
    repeated_items = [item for item in items for _ in range(k)]
    tool_calls: list[float] | None = None
    if getattr(env.config, "tools", ()):  # step the env, so that the calls run
        with policy.float32():
            sampled = _through_env(policy, env, repeated_items, temperature, seed)
            greedy_episodes = _through_env(policy, env, list(items), 0.0, seed)
            kls = _episode_kls(policy, sampled, temperature, batch_size)
        texts = [e.completion for e in sampled]
        greedy_texts = [e.completion for e in greedy_episodes]
        scores = [e.info["task"] for e in sampled]  # the env's own scores of what it ran
        greedy_scores = [e.info["task"] for e in greedy_episodes]
        lengths = [e.num_actions for e in sampled]
        tool_calls = [float(e.info.get("tool_call_count", 0)) for e in sampled]
    else:
        prompts = [env.task_prompt(item) for item in items]

        def decode(ids: list[int]) -> str:
            return cast(str, policy.tokenizer.decode(ids, skip_special_tokens=True))

        with policy.float32():
            repeated = [prompt for prompt in prompts for _ in range(k)]
            pairs = generate_completions(
                policy, env, repeated, temperature=temperature, seed=seed, batch_size=batch_size
            )
            greedy = generate_completions(policy, env, prompts, temperature=0.0, seed=seed, batch_size=batch_size)
            kls = completion_kls(policy, pairs, temperature=temperature, batch_size=batch_size)
        texts = [decode(completion) for _, completion in pairs]
        greedy_texts = [decode(completion) for _, completion in greedy]
        scores = [task.score(text, items[i // k]) for i, text in enumerate(texts)]
        greedy_scores = [task.score(text, item) for text, item in zip(greedy_texts, items)]
        lengths = [len(completion) for _, completion in pairs]

    def rows(values: Sequence[Any]) -> list[list[Any]]:
        return [list(values[i * k : (i + 1) * k]) for i in range(len(items))]

    return TaskEvalResult(
        task=str(task.name),
        samples_per_item=k,
        temperature=float(temperature),
        seed=seed,
        difficulties=[int(item.difficulty) for item in items],
        questions=[item.question for item in items],
        answers=[item.answer for item in items],
        sampled_correct=rows([float(s["correct"]) for s in scores]),
        sampled_format=rows([float(s["format"]) for s in scores]),
        greedy_correct=[float(s["correct"]) for s in greedy_scores],
        greedy_format=[float(s["format"]) for s in greedy_scores],
        kls=rows([float(value) for value in kls]),
        lengths=rows(lengths),
        samples=[
            {"question": item.question, "answer": item.answer, "sampled": texts[i * k], "greedy": greedy_texts[i]}
            for i, item in enumerate(items)
        ],
        tool_calls=None if tool_calls is None else rows(tool_calls),
    )


def _through_env(
    policy: LMPolicy, env: TextGenVectorEnv, items: Sequence[TaskItem], temperature: float, seed: int
) -> list[Episode]:
    """One episode per item, stepping `env` (its tools run) in batches of its slots; each batch samples from its own
    generator, a function of (seed, batch index), so two evaluations with the same seed draw the same uniforms."""
    n, episodes = env.num_envs, []
    for batch_index, start in enumerate(range(0, len(items), n)):
        chunk = list(items[start : start + n])
        generator = batch_generator(seed, batch_index)

        def sample(logits: torch.Tensor, generator: torch.Generator = generator) -> torch.Tensor:
            return sample_tokens(logits, temperature=temperature, generator=generator)

        given = chunk + [chunk[-1]] * (n - len(chunk))  # spare slots repeat the last item; their episodes are dropped
        ran = run_episodes(env, policy, list(range(n)), sample, temperature, options={"item": given})
        episodes.extend(sorted(ran, key=lambda e: e.slot)[: len(chunk)])
    return episodes


def _episode_kls(policy: LMPolicy, episodes: list[Episode], temperature: float, batch_size: int) -> list[float]:
    """Per episode, the summed exact KL(policy || reference) over the policy's own tokens (not the env's)."""
    kls: list[float] = []
    for start in range(0, len(episodes), batch_size):
        batch = RolloutBatch.from_episodes(episodes[start : start + batch_size], policy.tokenizer.pad_token_id)
        batch = batch.to(policy.device)
        with torch.no_grad():
            logits = policy.score(batch, temperature=temperature).logits
            kl = exact_kl_from_logits(logits, policy.reference_logits(batch, temperature=temperature))
        kls.extend(masked_sum(kl, batch.completion_mask, dim=1).tolist())
    return kls


def paired_task_gain(before: TaskEvalResult, after: TaskEvalResult) -> dict[str, Any]:
    """``after - before`` of each measure, paired item by item (same items, samples and seed), mean and SE over
    items, overall and by difficulty."""
    same = (before.questions, before.samples_per_item, before.seed) == (
        after.questions,
        after.samples_per_item,
        after.seed,
    )
    if not same:
        raise ValueError(
            "Expected two evaluations of the same items, samples_per_item and seed, got "
            f"{before.num_items} items x {before.samples_per_item} (seed {before.seed}) and "
            f"{after.num_items} items x {after.samples_per_item} (seed {after.seed})"
        )
    levels = np.asarray(before.difficulties)
    out: dict[str, Any] = {}
    tools = before.tool_calls is not None and after.tool_calls is not None
    measures = TaskEvalResult.MEASURES + (TaskEvalResult.TOOL_MEASURES if tools else ())
    for name in measures:
        gain = paired_difference(before._per_item(name), after._per_item(name))
        out[name], out[f"{name}_se"] = gain.mean, gain.se
    out["by_difficulty"] = {}
    for level in sorted(set(before.difficulties)):
        rows = levels == level
        out["by_difficulty"][str(level)] = {
            name: dict(
                zip(("mean", "se"), paired_difference(before._per_item(name)[rows], after._per_item(name)[rows]))
            )
            for name in measures
        }
    return out
