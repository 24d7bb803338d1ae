"""The task protocol: `TaskItem` (one question with its reference answer), `Task` and the `TaskBase` built-ins share."""

from __future__ import annotations

import abc
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from textgen_env.validation import check_choice

__all__ = [
    "ANSWER_FORMATS",
    "AnswerFormat",
    "Task",
    "TaskBase",
    "TaskItem",
    "check_difficulty",
    "format_instruction",
]

AnswerFormat = Literal["plain", "tag", "boxed", "answer_line"]
ANSWER_FORMATS: tuple[str, ...] = ("plain", "tag", "boxed", "answer_line")
"""How a built-in task asks for its answer: alone (``plain``), in ``<answer></answer>``, in ``\\boxed{}``, or on a
final ``Answer:`` line. The format component of the score checks that the completion follows it."""


class ReadOnlyDict(dict[str, Any]):
    """A dict that refuses changes after it is built (items are shared), yet pickles and deep-copies as a dict does
    (vector envs send items to worker processes; ``MappingProxyType`` cannot be pickled)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("TaskItem.metadata is read-only; build a new TaskItem instead")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _refuse  # type: ignore[assignment]  # mutators refuse on purpose
    __ior__ = _refuse  # type: ignore[assignment]  # as above

    def __reduce__(self) -> tuple[Any, ...]:
        return (ReadOnlyDict, (dict(self),))


@dataclass(frozen=True)
class TaskItem:
    """One question of a task, with what is needed to check a completion against it.

    Attributes:
        question: the user message (plain text, including the instruction on the answer format).
        answer: the reference answer as a string (one valid answer where several exist; ``metadata`` holds the rest).
        difficulty: the level the item was drawn at (one of the task's ``difficulties``).
        system_prompt: a system message that states the answer format, or None.
        metadata: task-specific facts (operands, valid answers, the phrasing index, ``canonical``: the question's
            content without its phrasing, which the train/eval split hashes).
    """

    question: str
    answer: str
    difficulty: int
    system_prompt: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.question, str) or not self.question.strip():
            raise ValueError(f"Expected question to be a non-empty string, got {self.question!r}")
        if not isinstance(self.answer, str):
            raise ValueError(f"Expected answer to be a string, got {self.answer!r}")
        # read-only: items are shared between the sampler, the env and the evaluator
        object.__setattr__(self, "metadata", ReadOnlyDict(self.metadata))

    def __hash__(self) -> int:
        # metadata is a dict (unhashable); equal items agree on these fields, so sets and dict keys work
        return hash((self.question, self.answer, self.difficulty, self.system_prompt, self.canonical))

    @property
    def canonical(self) -> str:
        """The item's content independent of its phrasing: ``metadata["canonical"]``, else the question."""
        return str(self.metadata.get("canonical", self.question))

    def messages(self) -> list[dict[str, str]]:
        """Chat messages: the system prompt (when there is one), then the question as the user turn."""
        out = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        out.append({"role": "user", "content": self.question})
        return out


@runtime_checkable
class Task(Protocol):
    """What the envs and the evaluator need from a task: items at a difficulty, and a score for a completion."""

    @property
    def name(self) -> str:
        """The task's registry name."""
        ...

    @property
    def difficulties(self) -> tuple[int, ...]:
        """The levels, easiest first; for the built-ins each level changes what is asked, not only its size."""
        ...

    def sample(self, rng: np.random.Generator, difficulty: int) -> TaskItem:
        """Draw one item at `difficulty` using only `rng` (same generator state -> same item)."""
        ...

    def score(self, completion: str, item: TaskItem) -> dict[str, float]:
        """Score `completion` against `item`: at least ``correct`` and ``format``, each 0.0 or 1.0."""
        ...


def check_difficulty(task_name: str, difficulty: Any, difficulties: Sequence[int]) -> int:
    """`difficulty` as an int if it is one of `difficulties`; else ValueError naming the valid levels."""
    if isinstance(difficulty, bool) or not isinstance(difficulty, numbers.Integral) or difficulty not in difficulties:
        raise ValueError(
            f"Expected difficulty for task {task_name!r} to be one of {list(difficulties)}, got {difficulty!r}"
        )
    return int(difficulty)


_INSTRUCTIONS: dict[str, dict[str, str]] = {
    "number": {
        "plain": "Answer with the number only.",
        "tag": "Put the final number inside <answer></answer>, for example <answer>42</answer>.",
        "boxed": "Put the final number inside \\boxed{}, for example \\boxed{42}.",
        "answer_line": "End with a line 'Answer: <number>'.",
    },
    "text": {
        "plain": "Answer with the answer only, nothing else.",
        "tag": "Put the final answer inside <answer></answer>.",
        "boxed": "Put the final answer inside \\boxed{}.",
        "answer_line": "End with a line 'Answer: <your answer>'.",
    },
    "list": {
        "plain": "Answer with the list only, items separated by commas.",
        "tag": "Put the list, items separated by commas, inside <answer></answer>.",
        "boxed": "Put the list, items separated by commas, inside \\boxed{}.",
        "answer_line": "End with a line 'Answer: <items separated by commas>'.",
    },
    "yesno": {
        "plain": "Answer yes or no.",
        "tag": "Put yes or no inside <answer></answer>.",
        "boxed": "Put yes or no inside \\boxed{}.",
        "answer_line": "End with a line 'Answer: yes' or 'Answer: no'.",
    },
    "expression": {
        "plain": "Answer with the expression only, for example (1 + 2) * 3.",
        "tag": "Put the expression inside <answer></answer>, for example <answer>(1 + 2) * 3</answer>.",
        "boxed": "Put the expression inside \\boxed{}, for example \\boxed{(1 + 2) * 3}.",
        "answer_line": "End with a line 'Answer: <expression>', for example 'Answer: (1 + 2) * 3'.",
    },
}


def format_instruction(kind: str, answer_format: str) -> str:
    """The sentence that asks for an answer of `kind` (number, text, list, yesno, expression) in `answer_format`."""
    return _INSTRUCTIONS[kind][answer_format]


class TaskBase(abc.ABC):
    """Shared machinery of the built-in tasks: difficulty checks, phrasings, answer formats and a guarded score.

    Subclasses set ``name``, ``difficulties`` and ``answer_kind`` and implement ``_sample`` and ``_score``.

    Args:
        answer_format: how the answer is asked for (see `ANSWER_FORMATS`); ``format`` scores compliance with it.
        phrasing: always use this phrasing index (for an evaluation per phrasing); None draws one from the rng.
        system_prompt: whether the answer instruction goes into a system message (True) or ends the question.

    Robustness: ``score`` never raises on a completion. If the checker itself fails (a bug, or a user checker that
    raises), the completion scores ``correct = format = 0`` with ``checker_error = 1``, and ``checker_errors``
    counts such completions so a run can log them and go on.
    """

    name: str = ""
    difficulties: tuple[int, ...] = ()
    answer_kind: str = "text"
    phrasings: tuple[str, ...] = ()
    """The question templates (``str.format`` fields per task); chosen by the rng unless ``phrasing`` is set."""

    def __init__(
        self, *, answer_format: AnswerFormat = "plain", phrasing: int | None = None, system_prompt: bool = True
    ) -> None:
        check_choice("answer_format", answer_format, ANSWER_FORMATS)
        if phrasing is not None and (
            isinstance(phrasing, bool) or not isinstance(phrasing, int) or not 0 <= phrasing < len(self.phrasings)
        ):
            raise ValueError(
                f"Expected phrasing for task {self.name!r} to be None or an int in [0, {len(self.phrasings)}), "
                f"got {phrasing!r}"
            )
        if not isinstance(system_prompt, bool):
            raise ValueError(f"Expected system_prompt to be a bool, got {system_prompt!r}")
        self.answer_format: str = answer_format
        self.phrasing = phrasing
        self.use_system_prompt = system_prompt
        self.checker_errors = 0
        """How many completions scored 0 because the checker raised (see the class docstring)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, answer_format={self.answer_format!r})"

    # -- sampling -------------------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, difficulty: int) -> TaskItem:
        """Draw one item at `difficulty` from `rng` (see the `Task` protocol)."""
        level = check_difficulty(self.name, difficulty, self.difficulties)
        return self._sample(rng, level)

    @abc.abstractmethod
    def _sample(self, rng: np.random.Generator, difficulty: int) -> TaskItem: ...

    def _phrase(self, rng: np.random.Generator, **fields: Any) -> tuple[str, int]:
        """A question from one of ``phrasings`` (drawn from `rng` unless fixed) and its index."""
        index = self.phrasing if self.phrasing is not None else int(rng.integers(len(self.phrasings)))
        return self.phrasings[index].format(**fields), index

    def _item(
        self,
        body: str,
        answer: Any,
        difficulty: int,
        phrasing: int,
        canonical: str,
        *,
        kind: str | None = None,
        **metadata: Any,
    ) -> TaskItem:
        """Build an item: the instruction (for `kind`, default ``answer_kind``) goes to the system prompt or ends
        the question."""
        instruction = format_instruction(kind or self.answer_kind, self.answer_format)
        question = body if self.use_system_prompt else f"{body} {instruction}"
        return TaskItem(
            question=question,
            answer=str(answer),
            difficulty=difficulty,
            system_prompt=instruction if self.use_system_prompt else None,
            metadata={"task": self.name, "phrasing": phrasing, "canonical": f"{self.name}|{canonical}", **metadata},
        )

    # -- scoring --------------------------------------------------------------------------------------------
    def score(self, completion: str, item: TaskItem) -> dict[str, float]:
        """``correct``, ``format`` and ``checker_error``, each 0.0 or 1.0 (see the class docstring)."""
        if not isinstance(completion, str):
            raise TypeError(f"Expected completion to be a str, got {type(completion).__name__}")
        if not isinstance(item, TaskItem):
            raise TypeError(f"Expected item to be a TaskItem, got {type(item).__name__}")
        try:
            correct, formatted = self._score(completion, item)
        except Exception:  # a failing checker scores 0 and is counted; the run goes on
            self.checker_errors += 1
            return {"correct": 0.0, "format": 0.0, "checker_error": 1.0}
        return {"correct": float(bool(correct)), "format": float(bool(formatted)), "checker_error": 0.0}

    @abc.abstractmethod
    def _score(self, completion: str, item: TaskItem) -> tuple[bool, bool]:
        """(correct, well formatted) for `completion`."""
