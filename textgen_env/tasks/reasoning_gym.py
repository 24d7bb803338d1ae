"""reasoning-gym datasets as tasks (``make_task("rg:<dataset>")``): its items, its difficulty levels, its scorer.

Everything runs offline: reasoning-gym generates its items procedurally from a seed (the few datasets that read
files read those shipped inside the package). Needs the optional dependency: ``pip install "textgen-env[tasks]"``.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from typing import Any

import numpy as np

from textgen_env.tasks.answers import EXTRACTION_MODES, extract_answer, follows_format, require
from textgen_env.tasks.base import AnswerFormat, TaskBase, TaskItem
from textgen_env.validation import check_int

__all__ = ["ReasoningGymTask", "reasoning_gym_datasets"]

_PURPOSE = "A reasoning-gym task (rg:<dataset>)"


def _factory() -> Any:
    return require("reasoning_gym.factory", "reasoning-gym", purpose=_PURPOSE)


def reasoning_gym_datasets() -> list[str]:
    """The names ``rg:<name>`` accepts (reasoning-gym's registered datasets), sorted."""
    return sorted(_factory().DATASETS)


class ReasoningGymTask(TaskBase):
    """One reasoning-gym dataset as a task.

    Difficulty: with no dataset options, a dataset that has a reasoning-gym curriculum gets its global levels as
    difficulties 1..N (level L sets every curriculum attribute to its L-th value, capped at the attribute's last);
    one without gets the single level 1. With dataset options (``make_task("rg:chain_sum", min_terms=3)``), those
    options are passed to ``reasoning_gym.create_dataset`` as they are and the task has the single level 1.

    Items: ``size`` items per level generated from ``seed`` (the train/eval split then holds out a share of them,
    by question text, so a question that two levels share is on the same side);
    the question is reasoning-gym's own text, with the task's answer-format instruction. ``metadata["entry"]`` is
    reasoning-gym's entry.

    Scoring: the answer (by default the tag, boxed, Answer: line, else the whole completion; ``extraction`` picks
    other modes) goes to the dataset's own ``score_answer``; its value is the ``score`` component and ``correct`` is
    1 when it is 1.0.

    Args:
        dataset: the reasoning-gym dataset name.
        size: items generated per level.
        seed: the seed reasoning-gym generates them from.
        answer_format, system_prompt: as for every built-in task (`TaskBase`).
        extraction: how the answer is found in a completion: a mode of
            `textgen_env.tasks.answers.EXTRACTION_MODES` or a list of them, the first that finds something winning
            (``"auto"``, the default: tag, boxed, Answer: line, else the whole completion). ``"last_number"`` (or
            ``["tag", "answer_line", "last_number"]``) lets a numeric dataset's strict checker see the number at
            the end of a small model's prose ("-3 * -9 is 27.").
        **options: dataset options for ``create_dataset`` (see that dataset's config class).
    """

    answer_kind = "text"

    def __init__(
        self,
        dataset: str,
        *,
        size: int = 1000,
        seed: int = 0,
        answer_format: AnswerFormat = "plain",
        system_prompt: bool = True,
        extraction: str | Sequence[str] = "auto",
        **options: Any,
    ) -> None:
        modes = [extraction] if isinstance(extraction, str) else list(extraction)
        if not modes or any(mode not in EXTRACTION_MODES for mode in modes):
            raise ValueError(
                f"Expected extraction to be one of {list(EXTRACTION_MODES)} or a non-empty list of them, got "
                f"{extraction!r}"
            )
        factory = _factory()
        if dataset not in factory.DATASETS:
            close = difflib.get_close_matches(str(dataset), list(factory.DATASETS), n=3)
            hint = f" Did you mean {close}?" if close else ""
            raise ValueError(
                f"Expected a reasoning-gym dataset after 'rg:' (one of the {len(factory.DATASETS)} names in "
                f"textgen_env.tasks.reasoning_gym.reasoning_gym_datasets()), got {dataset!r}.{hint}"
            )
        check_int("size", size, 1)
        check_int("seed", seed, 0)
        super().__init__(answer_format=answer_format, system_prompt=system_prompt)
        self.name = f"rg:{dataset}"
        self.dataset = dataset
        self.size = size
        self.seed = seed
        self.options = dict(options)
        self.extraction: tuple[str, ...] = tuple(modes)
        self._configs: list[dict[str, Any]] = []
        if options or not factory.has_curriculum(dataset):
            self._configs.append(dict(options))
        else:
            curriculum = factory.create_curriculum(dataset)
            for level in range(max(len(attribute.levels) for attribute in curriculum.attributes.values())):
                curriculum.set_global_level(level)
                config = dataclasses.asdict(curriculum.generate_configuration())
                self._configs.append({k: v for k, v in config.items() if k not in ("seed", "size")})
        self.difficulties = tuple(range(1, len(self._configs) + 1))
        self._datasets: dict[int, Any] = {}
        if options:  # check them now, not at the first sample inside a training run
            config_class = factory.DATASETS[dataset][1]
            fields = sorted(f.name for f in dataclasses.fields(config_class) if f.name not in ("seed", "size"))
            try:
                self._dataset(1)
            except (TypeError, ValueError, AssertionError) as error:
                raise ValueError(
                    f"Expected options of reasoning-gym's {config_class.__name__} (fields {fields}), got {options!r}: "
                    f"{error}"
                ) from None

    def level_options(self, difficulty: int) -> dict[str, Any]:
        """The options ``create_dataset`` gets at `difficulty`."""
        return dict(self._configs[difficulty - 1])

    def _dataset(self, difficulty: int) -> Any:
        if difficulty not in self._datasets:
            self._datasets[difficulty] = _factory().create_dataset(
                self.dataset, seed=self.seed, size=self.size, **self._configs[difficulty - 1]
            )
        return self._datasets[difficulty]

    def _sample(self, rng: np.random.Generator, difficulty: int) -> TaskItem:
        index = int(rng.integers(self.size))
        entry = self._dataset(difficulty)[index]
        return self._item(
            entry["question"], entry["answer"], difficulty, 0, entry["question"], index=index, entry=entry
        )

    def score(self, completion: str, item: TaskItem) -> dict[str, float]:
        """As `TaskBase.score`, plus ``score``: reasoning-gym's own score in [0, 1] (0 when the checker failed)."""
        self._last_score = 0.0
        scores = super().score(completion, item)
        scores["score"] = self._last_score if not scores["checker_error"] else 0.0
        return scores

    def _score(self, completion: str, item: TaskItem) -> tuple[bool, bool]:
        found = extract_answer(completion, self.extraction)
        value = float(self._dataset(item.difficulty).score_answer(answer=found, entry=item.metadata["entry"]))
        self._last_score = value
        return value >= 1.0, follows_format(completion, self.answer_format, lambda text: bool(text))
