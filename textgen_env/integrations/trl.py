"""TRL adapters: the package's rewards as TRL reward functions, and its prompt sets as `datasets.Dataset` for TRL.

TRL's trainers (``GRPOTrainer``, ``RLOOTrainer``) call each reward function as ``f(prompts=..., completions=...,
completion_ids=..., **columns)`` where ``columns`` are the dataset's other columns, and sum what they return. Prompts
and completions are strings (plain datasets) or lists of chat messages (conversational datasets). These adapters
accept both:

>>> from textgen_env.integrations.trl import trl_reward_functions
>>> [keyword] = trl_reward_functions("keyword", {"keywords": ["great"]})
>>> keyword(prompts=["The film was"], completions=[" great fun"])
[1.0]
>>> keyword(prompts=[[{"role": "user", "content": "Review it"}]],
...         completions=[[{"role": "assistant", "content": "dull"}]])
[0.0]

The env's KL term is not part of these functions: TRL applies its own KL penalty (``GRPOConfig.beta``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from textgen_env.integrations._deps import require
from textgen_env.prompts import PromptSpec, make_prompt_source
from textgen_env.rewards import Reward, RewardSpec, WeightedReward, make_reward
from textgen_env.validation import check_int

__all__ = ["TRLRewardFunction", "TRLTask", "completion_text", "prompt_dataset", "prompt_text", "trl_reward_functions"]

Message = Mapping[str, Any]


def _content(message: Message) -> str:
    content = message.get("content", "")
    if isinstance(content, str):
        return content
    # multimodal content: a list of parts, of which the text parts count
    return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))


def prompt_text(prompt: str | Sequence[Message]) -> str:
    """The text a package reward sees as the prompt: the string itself, or a conversation's last user message."""
    if isinstance(prompt, str):
        return prompt
    users = [m for m in prompt if m.get("role") == "user"]
    return _content(users[-1]) if users else _content(prompt[-1]) if len(prompt) else ""


def completion_text(completion: str | Sequence[Message]) -> str:
    """The completion's text: the string itself, or its messages' contents joined (TRL gives one assistant turn)."""
    if isinstance(completion, str):
        return completion
    return "".join(_content(m) for m in completion)


class TRLRewardFunction:
    """A package `Reward` (times `weight`) with TRL's reward function signature; ``__name__`` names it in TRL's logs.

    Args:
        reward: the reward to call (batched: one call per TRL batch).
        weight: its factor (the weight of the term in a mix).
        name: the name TRL logs it under (``rewards/<name>/mean``); the reward's by default.
    """

    def __init__(self, reward: Reward, weight: float = 1.0, name: str | None = None) -> None:
        if not isinstance(reward, Reward):
            raise TypeError(f"Expected a textgen_env Reward, got {type(reward).__name__}")
        self.reward = reward
        self.weight = float(weight)
        self.__name__ = name or reward.name

    def __call__(
        self,
        prompts: Sequence[str | Sequence[Message]],
        completions: Sequence[str | Sequence[Message]],
        **kwargs: Any,
    ) -> list[float]:
        """One reward per completion; dataset columns arrive in `kwargs` (``references`` is used when needed)."""
        if len(prompts) != len(completions):
            raise ValueError(f"Expected one prompt per completion, got {len(prompts)} and {len(completions)}")
        references = None
        if self.reward.needs_references:
            column = kwargs.get("references")
            if column is None:
                raise ValueError(
                    f"Expected a 'references' column in the dataset for reward {self.reward.name!r}, got none; "
                    "prompt_dataset() adds it for prompt sets with references (for example 'facts')"
                )
            references = [tuple(str(r) for r in refs) for refs in column]
        texts = [prompt_text(p) for p in prompts]
        parts = self.reward.components(
            texts, [completion_text(c) for c in completions], [True] * len(texts), references
        )
        total = np.zeros(len(texts)) if not parts else sum(parts.values())
        return [self.weight * float(value) for value in np.asarray(total).reshape(-1)]

    def __repr__(self) -> str:
        return f"TRLRewardFunction({self.__name__!r}, weight={self.weight})"


def trl_reward_functions(
    reward: RewardSpec, reward_kwargs: Mapping[str, Any] | None = None, *, split: bool = False
) -> list[TRLRewardFunction]:
    """TRL reward functions for any reward spec the envs take (a name, a callable, a `Reward`, a weighted dict).

    Args:
        reward: as ``TextGenEnv(reward=...)``.
        reward_kwargs: as ``TextGenEnv(reward_kwargs=...)``.
        split: for a weighted mix, one function per term (TRL logs each and sums them, the same total), instead
            of one function for the whole mix.

    Returns:
        The list to pass as ``GRPOTrainer(reward_funcs=...)`` (leave ``GRPOConfig.reward_weights`` unset: the mix's
        weights are applied here).
    """
    built = make_reward(reward, reward_kwargs)
    if split and isinstance(built, WeightedReward):
        return [TRLRewardFunction(term, weight) for term, weight in built.terms]
    return [TRLRewardFunction(built)]


def prompt_dataset(
    prompts: PromptSpec = "movie_reviews",
    *,
    conversational: bool = False,
    system_prompt: str | None = None,
    num_prompts: int | None = None,
    seed: int = 0,
) -> Any:
    """A `datasets.Dataset` of a prompt set with the columns TRL and these reward functions need.

    Columns: ``prompt`` (the text, or with ``conversational=True`` a chat: an optional system message, then the
    prompt as the user message) and, when any prompt has them, ``references`` (a list of strings per row).

    Args:
        prompts: any prompt spec the envs take (built-in set, file, list, callable).
        conversational: chat messages instead of plain text (TRL then applies the tokenizer's chat template).
        system_prompt: a system message for conversational rows.
        num_prompts: rows to draw with a generator seeded by `seed` (required for a callable source; for a list,
            None keeps every prompt once, in order).
        seed: the seed of those draws.
    """
    datasets = require("datasets", "datasets", feature="prompt_dataset")
    if system_prompt is not None and not conversational:
        raise ValueError("Expected conversational=True with a system_prompt, got conversational=False")
    if num_prompts is not None:
        check_int("num_prompts", num_prompts, 1)
    source = make_prompt_source(prompts)
    if num_prompts is None:
        if not len(source):
            raise ValueError("Expected num_prompts for a callable prompt source (it has no fixed list), got None")
        items = list(source.prompts)
    else:
        rng = np.random.default_rng(seed)
        items = [source.sample(rng) for _ in range(num_prompts)]
    rows: dict[str, list[Any]] = {"prompt": []}
    for item in items:
        if conversational:
            system = [{"role": "system", "content": system_prompt}] if system_prompt else []
            rows["prompt"].append([*system, {"role": "user", "content": item.text}])
        else:
            rows["prompt"].append(item.text)
    if any(item.references for item in items):
        rows["references"] = [list(item.references) for item in items]
    return datasets.Dataset.from_dict(rows)


class TRLTask:
    """A checkable task's items as a TRL dataset, and its score (``correct``, ``format``, ...) as reward functions.

    Works with any object with the task protocol of ``textgen_env.tasks`` (``name``, ``score(completion, item) ->
    {component: value}``; items with ``messages()``, ``answer`` and ``difficulty``), so it needs nothing from the
    tasks package itself. Draw the items from the train split (``textgen_env.tasks.TaskSampler(task, seed=0,
    split="train")``) so that the held-out items stay out of training.

    Args:
        task: the task that scores completions.
        items: the items to train on, in dataset order.
    """

    def __init__(self, task: Any, items: Sequence[Any]) -> None:
        if not callable(getattr(task, "score", None)):
            raise TypeError(f"Expected a task with a score(completion, item) method, got {type(task).__name__}")
        if not items:
            raise ValueError("Expected at least one task item, got none")
        self.task = task
        self.items = list(items)
        self._cache: tuple[tuple[Any, ...], list[dict[str, float]]] | None = None

    def dataset(self) -> Any:
        """A `datasets.Dataset`: ``prompt`` (the item's chat messages), ``answer``, ``difficulty``, ``item_index``."""
        datasets = require("datasets", "datasets", feature="TRLTask.dataset")
        return datasets.Dataset.from_dict(
            {
                "prompt": [list(item.messages()) for item in self.items],
                "answer": [str(item.answer) for item in self.items],
                "difficulty": [int(item.difficulty) for item in self.items],
                "item_index": list(range(len(self.items))),
            }
        )

    def reward_functions(self, weights: Mapping[str, float] | None = None) -> list[Any]:
        """One TRL reward function per score component, times its weight (default ``{"correct": 1.0, "format":
        0.1}``); TRL logs each as ``rewards/<task>_<component>/mean``. The score of a batch is computed once."""
        chosen = dict(weights if weights is not None else {"correct": 1.0, "format": 0.1})
        return [self._component_function(name, float(weight)) for name, weight in chosen.items()]

    def scores(self, completions: Sequence[Any], item_index: Sequence[int]) -> list[dict[str, float]]:
        """The task's score of each completion against its row's item (cached for the batch's other components)."""
        key = (tuple(item_index), tuple(completion_text(c) for c in completions))
        if self._cache is None or self._cache[0] != key:
            bad = [i for i in item_index if not 0 <= int(i) < len(self.items)]
            if bad:
                raise ValueError(f"Expected item_index values in [0, {len(self.items)}), got {bad[0]}")
            texts = key[1]
            self._cache = (key, [dict(self.task.score(t, self.items[int(i)])) for t, i in zip(texts, item_index)])
        return self._cache[1]

    def _component_function(self, component: str, weight: float) -> Any:
        def reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
            if "item_index" not in columns:
                raise ValueError("Expected an 'item_index' column in the dataset (use TRLTask.dataset()), got none")
            scores = self.scores(completions, columns["item_index"])
            missing = [s for s in scores if component not in s]
            if missing:
                raise ValueError(f"Expected the task's score to have {component!r}, got {sorted(missing[0])}")
            return [weight * float(s[component]) for s in scores]

        reward.__name__ = f"{getattr(self.task, 'name', 'task')}_{component}"
        return reward
