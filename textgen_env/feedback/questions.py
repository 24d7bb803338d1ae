"""What the feedback page asks: questions (two completions to compare, or one to rate), made from a model or posted
by a running training job, and the checks and log writes of every answer.

`QuestionBoard` is the web app's state, shared by its request threads (one lock). A question stays open until it is
answered or skipped, so reloading the page shows the same one. Questions of a training job come first: the job's
``human`` reward (or `PairwisePreference`) calls `QuestionBoard.ask_rating` (or `ask_preference`) as its callback,
which blocks until a person answers in the browser.

A job's question is handed over under the board's lock, in one of two ways and never both: the answer is logged and
the job gets it, or the job's deadline passed first and closed the question, and a late answer is refused (404)
with nothing logged.
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from textgen_env.feedback.log import append_record, open_log, preference_record, rating_record

__all__ = ["Answer", "InvalidAnswer", "ModelCompleter", "Question", "QuestionBoard", "UnknownQuestion", "short_repr"]

PathLike = str | os.PathLike
QuestionKind = Literal["pair", "rating"]
Completer = Callable[[str, int], Sequence[str]]
"""``completer(prompt, n) -> n completions of prompt``."""


_SURROGATE = re.compile("[\ud800-\udfff]")


def short_repr(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to about `limit` characters, for error messages that echo what a client sent."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print (sys.get_int_max_str_digits)
        return f"an int of {value.bit_length()} bits" if isinstance(value, int) else type(value).__name__
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class UnknownQuestion(KeyError):
    """An answer or a skip for a question id that is not open (never asked, answered already, skipped or timed out)."""

    def __str__(self) -> str:
        return str(self.args[0])


class InvalidAnswer(ValueError):
    """An answer that does not fit its question (a wrong kind of answer, a rating off the scale): the client's
    mistake, unlike a ValueError from anywhere else."""


@dataclass(frozen=True)
class Question:
    """One question on the page."""

    id: str
    """Opaque id the answer must quote."""
    kind: QuestionKind
    """``"pair"``: which of two completions is better; ``"rating"``: rate one completion."""
    prompt: str
    completions: tuple[str, ...]
    """Two completions for a pair, one for a rating."""
    source: Literal["model", "job"] = "model"
    """``"model"``: made by the board's completer; ``"job"``: asked by a running training job."""

    def as_json(self, scale: tuple[float, float]) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "prompt": self.prompt,
            "completions": list(self.completions),
            "source": self.source,
            "scale": [scale[0], scale[1]],
        }


@dataclass
class _Pending:
    """An open question; for a job's question, the hand-off of its answer (state changes under the board's lock)."""

    question: Question
    done: threading.Event = field(default_factory=threading.Event)
    state: Literal["open", "answered", "skipped", "expired"] = "open"
    answer: Any = None


@dataclass(frozen=True)
class Answer:
    """A validated answer, as it was logged."""

    question: Question
    record: dict[str, Any]


class ModelCompleter:
    """Samples completions of a prompt from a causal LM (``model.generate``), seeded, for the page's questions.

    Args:
        model: a ``PreTrainedModel`` (causal LM).
        tokenizer: its tokenizer (with a pad token).
        max_new_tokens: tokens per completion at most.
        temperature: sampling temperature (> 0).
        seed: seed of the sampling; each call advances it.
    """

    def __init__(
        self, model: Any, tokenizer: Any, *, max_new_tokens: int = 24, temperature: float = 1.0, seed: int = 0
    ) -> None:
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"Expected max_new_tokens to be a positive int, got {max_new_tokens!r}")
        if not isinstance(temperature, numbers.Real) or not 0 < temperature < math.inf:
            raise ValueError(f"Expected temperature to be a positive finite number, got {temperature!r}")
        self.model: Any = model
        self.tokenizer: Any = tokenizer
        self.max_new_tokens: int = max_new_tokens
        self.temperature: float = float(temperature)
        self._seeds: itertools.count[int] = itertools.count(seed)

    def __call__(self, prompt: str, n: int) -> list[str]:
        import torch

        encoded = self.tokenizer([prompt] * n, return_tensors="pt")
        torch.manual_seed(next(self._seeds))
        with torch.no_grad():
            output = self.model.generate(
                **encoded,
                do_sample=True,
                temperature=self.temperature,
                top_k=0,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new_tokens = output[:, encoded["input_ids"].shape[1] :]  # (n, new)
        return [self.tokenizer.decode(row, skip_special_tokens=True) for row in new_tokens]


class QuestionBoard:
    """The open questions of the feedback page and the log their answers go to.

    Args:
        log_path: the JSONL log every answer is appended to at once.
        completer: ``completer(prompt, n) -> completions`` (e.g. a `ModelCompleter`); ``None``: only a training
            job's questions are asked.
        prompts: what the completer continues: a list of prompts or anything ``make_prompt_source`` accepts.
        mode: ``"pair"``, ``"rating"`` or ``"mixed"`` (alternating) for the completer's questions.
        scale: the lowest and highest rating.
        seed: seed of the prompt draws.
    """

    def __init__(
        self,
        log_path: PathLike,
        *,
        completer: Completer | None = None,
        prompts: Any = "movie_reviews",
        mode: Literal["pair", "rating", "mixed"] = "mixed",
        scale: tuple[float, float] = (1, 5),
        seed: int = 0,
    ) -> None:
        from textgen_env.prompts import make_prompt_source

        if not isinstance(log_path, (str, os.PathLike)):
            raise TypeError(f"Expected log_path to be a path, got {type(log_path).__name__}")
        if completer is not None and not callable(completer):
            raise TypeError(f"Expected completer to be callable or None, got {type(completer).__name__}")
        if mode not in ("pair", "rating", "mixed"):
            raise ValueError(f"Expected mode 'pair', 'rating' or 'mixed', got {mode!r}")
        if not (
            isinstance(scale, (tuple, list))
            and len(scale) == 2
            and all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in scale)
            and scale[0] < scale[1]
        ):
            raise ValueError(f"Expected scale to be finite numbers (low, high) with low < high, got {scale!r}")
        self.log_path = open_log(log_path)  # a log that cannot be written fails now, not at the first answer
        self.completer = completer
        self.prompts = make_prompt_source(prompts) if completer is not None else None
        self.mode = mode
        self.scale = (float(scale[0]), float(scale[1]))
        self.np_random = np.random.default_rng(seed)
        self.answered = 0
        self.skipped = 0
        self._open: dict[str, _Pending] = {}
        self._made = 0
        self._lock = threading.RLock()

    # -- the page's side -------------------------------------------------------------------------------------------
    def next_question(self) -> Question | None:
        """The question to show: the oldest open job question, else the open model question, else a new one
        (``None`` when there is no completer and no job is asking)."""
        with self._lock:
            jobs = [p.question for p in self._open.values() if p.question.source == "job"]
            if jobs:
                return jobs[0]
            made = [p.question for p in self._open.values() if p.question.source == "model"]
            if made:
                return made[0]
            if self.completer is None:
                return None
            return self._make_question()

    def _make_question(self) -> Question:
        kinds: tuple[QuestionKind, QuestionKind] = ("pair", "rating")
        kind: QuestionKind = kinds[self._made % 2] if self.mode == "mixed" else self.mode
        self._made += 1
        assert self.prompts is not None and self.completer is not None  # next_question asks only with a completer
        prompt = self.prompts.sample(self.np_random).text
        completions = self.completer(prompt, 2 if kind == "pair" else 1)
        # the board owns these texts, so a lone surrogate (which UTF-8 cannot carry to the page) is replaced
        texts = [_SURROGATE.sub("\ufffd", str(text)) for text in (prompt, *completions)]
        question = Question(uuid.uuid4().hex, kind, texts[0], tuple(texts[1:]), "model")
        self._open[question.id] = _Pending(question)
        return question

    def _take(self, question_id: object) -> _Pending:
        if not isinstance(question_id, str) or question_id not in self._open:
            raise UnknownQuestion(
                f"Expected the id of an open question, got {short_repr(question_id)} (never asked, answered "
                "already, skipped, or its job stopped waiting)"
            )
        return self._open[question_id]

    def answer(self, question_id: str, *, choice: str | None = None, rating: float | None = None) -> Answer:
        """Check an answer, append its record to the log, close the question (and wake the job that asked).

        A pair takes ``choice`` (``"a"``, ``"b"`` or ``"tie"``), a rating question takes ``rating`` (a number on
        `scale`); anything else raises (`UnknownQuestion`, `InvalidAnswer`) and writes nothing. The log write and
        the hand-off to a waiting job happen under the lock, so a job never times out on an answer that was logged.
        """
        with self._lock:
            pending = self._take(question_id)
            question = pending.question
            extra = {"question_id": question.id, "source": f"web-{question.source}"}
            if question.kind == "pair":
                if rating is not None or choice not in ("a", "b", "tie"):
                    raise InvalidAnswer(
                        f"Expected choice 'a', 'b' or 'tie' for a pair question, got "
                        f"{short_repr(choice) if rating is None else 'a rating'}"
                    )
                a, b = question.completions
                record = preference_record(question.prompt, a, b, choice, **extra)
                result: Any = choice
            else:
                low, high = self.scale
                valid = isinstance(rating, numbers.Real) and not isinstance(rating, bool) and low <= rating <= high
                if choice is not None or not valid:
                    raise InvalidAnswer(
                        f"Expected rating to be a number from {low:g} to {high:g} for a rating question, got "
                        f"{short_repr(rating if choice is None else choice)}"
                    )
                assert rating is not None  # valid: a real number
                record = rating_record(question.prompt, question.completions[0], float(rating), self.scale, **extra)
                result = float(rating)
            append_record(self.log_path, record)
            del self._open[question.id]
            self.answered += 1
            pending.state, pending.answer = "answered", result
            pending.done.set()
        return Answer(question, record)

    def skip(self, question_id: str) -> None:
        """Close a question without logging anything; a job that asked gets ``None``."""
        with self._lock:
            pending = self._take(question_id)
            del self._open[question_id]
            self.skipped += 1
            pending.state = "skipped"
            pending.done.set()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            waiting = sum(p.question.source == "job" for p in self._open.values())
            return {
                "answered": self.answered,
                "skipped": self.skipped,
                "job_waiting": waiting,
                "log": os.fspath(self.log_path),
            }

    # -- a training job's side -------------------------------------------------------------------------------------
    def _ask(self, kind: QuestionKind, prompt: str, completions: tuple[str, ...], timeout: float | None) -> Any:
        for name, text in (("prompt", prompt), *(("completion", c) for c in completions)):
            if not isinstance(text, str):
                raise TypeError(f"Expected the {name} of a question to be a str, got {type(text).__name__}")
            bad = _SURROGATE.search(text)
            if bad is not None:  # it could never reach the page (JSON to the browser is UTF-8): refuse it now
                raise ValueError(
                    f"Expected the {name} of a question to be text that encodes to UTF-8, got a lone surrogate "
                    f"{bad.group()!r} at character {bad.start()}"
                )
        pending = _Pending(Question(uuid.uuid4().hex, kind, prompt, completions, "job"))
        with self._lock:
            self._open[pending.question.id] = pending
        try:
            pending.done.wait(timeout)
        finally:
            with self._lock:  # decide under the lock: an answer that got in first wins, else the question closes
                if pending.state == "open":
                    pending.state = "expired"
                    self._open.pop(pending.question.id, None)
        if pending.state == "expired":
            raise TimeoutError(f"Expected an answer in the feedback page within {timeout} s, got none")
        return pending.answer

    def ask_rating(self, prompt: str, completion: str, timeout: float | None = None) -> float:
        """Ask the page to rate `completion` and block until a person answers: the rating (the scale's middle when
        the person skips). Pass as ``HumanFeedbackReward(callback=board.ask_rating, log_path=None)``: the board
        logs the answer itself."""
        answer = self._ask("rating", prompt, (completion,), timeout)
        return sum(self.scale) / 2 if answer is None else answer

    def ask_preference(self, prompt: str, completion_a: str, completion_b: str, timeout: float | None = None) -> str:
        """Ask the page which completion is better and block until answered: ``"a"``, ``"b"`` or ``"tie"`` (a
        skip counts as a tie). Pass as ``PairwisePreference(callback=board.ask_preference, log_path=None)``."""
        answer = self._ask("pair", prompt, (completion_a, completion_b), timeout)
        return "tie" if answer is None else answer
