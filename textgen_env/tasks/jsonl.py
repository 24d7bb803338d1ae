"""Your own questions from a JSON Lines file on disk (GSM8K-style): one ``{"question", "answer"}`` object a line."""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Any

import numpy as np

from textgen_env.tasks.answers import CHECKERS, check_answer, follows_format, normalize_text
from textgen_env.tasks.base import AnswerFormat, TaskBase, TaskItem, format_instruction

__all__ = ["JsonlTask", "read_task_file"]


def _reference(answer: Any) -> str:
    """The answer field as a string; a GSM8K solution's final ``#### N`` gives N."""
    if isinstance(answer, bool) or not isinstance(answer, (str, numbers.Real)):
        raise ValueError(f"Expected 'answer' to be a string or a number, got {answer!r}")
    text = str(answer)
    return text.rsplit("####", 1)[1].strip() if "####" in text else text.strip()


def read_task_file(path: str | Path) -> list[dict[str, Any]]:
    """The items of a task file: dicts with ``question``, ``answer``, ``checker``, ``difficulty`` and ``line``.

    Raises:
        ValueError: naming the file and line number of the first bad line (not JSON, not an object, a missing or
            empty question or answer, an unknown checker, a difficulty that is not an int), or for a file with no
            items.
        FileNotFoundError: when the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Expected path to be a JSON Lines task file, got {str(path)!r}, which does not exist")
    items = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: Expected a JSON object, got invalid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{where}: Expected a JSON object with 'question' and 'answer', got {record!r}")
            question = record.get("question")
            if not isinstance(question, str) or not question.strip():
                raise ValueError(f"{where}: Expected 'question' to be a non-empty string, got {question!r}")
            try:
                answer = _reference(record.get("answer"))
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
            if not answer:
                raise ValueError(f"{where}: Expected a non-empty 'answer', got {record.get('answer')!r}")
            checker = record.get("checker", "auto")
            if checker not in CHECKERS:
                raise ValueError(f"{where}: Expected 'checker' to be one of {sorted(CHECKERS)}, got {checker!r}")
            difficulty = record.get("difficulty", 1)
            if isinstance(difficulty, bool) or not isinstance(difficulty, int):
                raise ValueError(f"{where}: Expected 'difficulty' to be an int, got {difficulty!r}")
            items.append(
                {"question": question, "answer": answer, "checker": checker, "difficulty": difficulty, "line": number}
            )
    if not items:
        raise ValueError(f"Expected at least one question in the task file {str(path)!r}, got none")
    return items


class JsonlTask(TaskBase):
    """Questions from a JSON Lines file: nothing is downloaded; bring GSM8K-style data you have on disk.

    Each line is an object with ``question`` (the user message), ``answer`` (a string or number; text after a final
    ``####`` is used, as in GSM8K solutions), and optionally ``checker`` (a name in
    `textgen_env.tasks.answers.CHECKERS`: ``auto``, ``number``, ``exact``, ``math``, or one you registered with
    ``register_checker``) and ``difficulty`` (an int, default 1). Blank lines are skipped; a bad line raises
    ValueError naming its line number when the task is made.

    Args:
        path: the file.
        system_prompt: the system message; None uses the answer-format instruction (``answer_format``), and ``""``
            sends none.
        answer_format: the format ``format`` scores (``plain``: one line).

    Scoring: ``correct`` from the line's checker; a checker that raises scores 0 and is counted
    (``checker_errors``, see `TaskBase`).
    """

    name = "jsonl"
    answer_kind = "text"

    def __init__(
        self, path: str | Path, *, system_prompt: str | None = None, answer_format: AnswerFormat = "plain"
    ) -> None:
        super().__init__(answer_format=answer_format)
        if system_prompt is not None and not isinstance(system_prompt, str):
            raise ValueError(f"Expected system_prompt to be a string or None, got {system_prompt!r}")
        self.path = Path(path)
        self.records = read_task_file(self.path)
        self.system_text = format_instruction("text", answer_format) if system_prompt is None else system_prompt
        self.difficulties = tuple(sorted({record["difficulty"] for record in self.records}))
        self._by_level = {level: [r for r in self.records if r["difficulty"] == level] for level in self.difficulties}

    def _sample(self, rng: np.random.Generator, difficulty: int) -> TaskItem:
        record = self._by_level[difficulty][int(rng.integers(len(self._by_level[difficulty])))]
        return TaskItem(
            question=record["question"],
            answer=record["answer"],
            difficulty=difficulty,
            system_prompt=self.system_text or None,
            metadata={
                "task": self.name,
                "checker": record["checker"],
                "line": record["line"],
                "canonical": f"jsonl|{normalize_text(record['question'])}",
            },
        )

    def _score(self, completion: str, item: TaskItem) -> tuple[bool, bool]:
        correct = check_answer(completion, item.answer, item.metadata["checker"])
        return correct, follows_format(completion, self.answer_format, lambda text: bool(normalize_text(text)))
