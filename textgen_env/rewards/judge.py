"""An offline LM judge: a local causal LM grades each completion against a rubric question, batched and cached.

Two ways to read the judge's answer:

* ``mode="yes_probability"`` (default): one forward pass; the score is P(yes) / (P(yes) + P(no)) over the judge's
  next token, summed over the yes/no spellings that are single tokens of its vocabulary ("yes", "Yes", " yes", ...).
  Range [0, 1]; smooth, so it ranks completions even when a small judge would answer "yes" to all of them.
* ``mode="score"``: the judge writes up to `max_new_tokens` tokens greedily (the package's one generation loop);
  the first number in its answer, clipped to [0, `max_score`] and divided by it, is the score. An answer without a
  number scores `unparsed_score` (and is counted in `unparsed`).

Each (prompt, completion) pair is judged once: results sit in a bounded least-recently-used cache. The
group-relative form (RULER-style) is `JudgeReward.ranked`, a `GroupRankReward` over the judge.

>>> from textgen_env.testing import tiny_model_and_tokenizer
>>> model, tokenizer = tiny_model_and_tokenizer()
>>> judge = JudgeReward("is the reply good ?", model=model, tokenizer=tokenizer, answers=("good", "bad"))
>>> scores = judge(["the movie was"], ["great fun"], [True])
>>> bool(0.0 <= scores[0] <= 1.0)
True
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from textgen_env.generation import KVSampler, StopRules, generate
from textgen_env.models import load_model
from textgen_env.rewards.base import Reward
from textgen_env.rewards.group import GroupRankReward
from textgen_env.rewards.lm import ModelSpec, TokenizerSpec, _batches, _check_positive_int, _check_spec, _max_length

__all__ = ["DEFAULT_JUDGE_TEMPLATE", "JUDGE_MODES", "JudgeReward"]

JUDGE_MODES = ("yes_probability", "score")

DEFAULT_JUDGE_TEMPLATE = (
    "Read the request and the reply, then answer the question.\n\n"
    "Request: {prompt}\nReply: {completion}\n\nQuestion: {rubric}\n{instruction}"
)
"""The judge's prompt; ``{prompt}``, ``{completion}``, ``{rubric}`` and ``{instruction}`` are filled in by plain
replacement (braces in the texts are safe). With a tokenizer that has a chat template it is sent as a user turn."""

_INSTRUCTIONS = {
    "yes_probability": "Answer with {yes} or {no}.",
    "score": "Answer with a number from 0 to {max_score}.",
}
_FIELD = re.compile(r"\{(rubric|instruction|prompt|completion)\}")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _single_token_ids(tokenizer: PreTrainedTokenizerBase, word: str) -> list[int]:
    """The ids of the spellings of `word` (as is, lower, Capitalised, UPPER; with and without a leading space)
    that are one token, other than the unknown token."""
    spellings = {form for base in (word, word.lower(), word.capitalize(), word.upper()) for form in (base, " " + base)}
    ids = {tuple(tokenizer(form, add_special_tokens=False)["input_ids"]) for form in spellings}
    return sorted({p[0] for p in ids if len(p) == 1 and p[0] != tokenizer.unk_token_id})


class JudgeReward(Reward):
    """A local causal LM's verdict on each completion, for a rubric question (see the module docstring).

    Score in [0, 1]: P(yes) in ``yes_probability`` mode, the parsed number / `max_score` in ``score`` mode. A 135M
    judge is weak: see ``benchmarks/results/judge_agreement.json`` for its measured agreement with known rewards.

    Args:
        rubric: the question the judge answers about the reply, e.g. ``"Is the reply positive?"``.
        model: the judge: a name, a local path, a ``PreTrainedModel`` (used as is), or ``None`` for the embedded
            default model (SmolLM2-135M-Instruct).
        tokenizer: its tokenizer (instance, name or path); ``None`` loads the model's own.
        mode: ``"yes_probability"`` or ``"score"``.
        answers: the positive and the negative answer words of ``yes_probability`` mode (each must be a single
            token in some spelling: as given, lower, Capitalised or UPPER, with or without a leading space).
        template: the judge prompt (`DEFAULT_JUDGE_TEMPLATE`); it must contain ``{completion}``.
        max_score: the top of the scale in ``score`` mode (a positive int).
        max_new_tokens: the judge's answer length in ``score`` mode.
        unparsed_score: the score of an answer without a number, in [0, 1].
        use_chat_template: wrap the judge prompt in the tokenizer's chat template (None: when it has one).
        device: where to run the model.
        batch_size: judge prompts per forward pass.
        cache_size: (prompt, completion) pairs remembered (least recently used ones go first); 0 turns it off.
    """

    name = "judge"

    def __init__(
        self,
        rubric: str = "Is the reply a good, helpful answer to the request?",
        model: ModelSpec = None,
        tokenizer: TokenizerSpec = None,
        *,
        mode: Literal["yes_probability", "score"] = "yes_probability",
        answers: tuple[str, str] = ("yes", "no"),
        template: str = DEFAULT_JUDGE_TEMPLATE,
        max_score: int = 10,
        max_new_tokens: int = 4,
        unparsed_score: float = 0.0,
        use_chat_template: bool | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
        cache_size: int = 4096,
    ) -> None:
        _check_spec(model, tokenizer, model_required=False)
        if not isinstance(rubric, str) or not rubric.strip():
            raise ValueError(f"Expected rubric to be a non-empty question, got {rubric!r}")
        if mode not in JUDGE_MODES:
            raise ValueError(f"Expected mode to be one of {list(JUDGE_MODES)}, got {mode!r}")
        if (
            not isinstance(answers, (tuple, list))
            or len(answers) != 2
            or not all(isinstance(word, str) and word.strip() for word in answers)
        ):
            raise ValueError(f"Expected answers to be two non-empty words (yes, no), got {answers!r}")
        if not isinstance(template, str) or "{completion}" not in template:
            raise ValueError(f"Expected template to be a str containing '{{completion}}', got {template!r}")
        if (
            isinstance(unparsed_score, bool)
            or not isinstance(unparsed_score, (int, float))
            or not 0.0 <= unparsed_score <= 1.0
        ):
            raise ValueError(f"Expected unparsed_score to be a number in [0, 1], got {unparsed_score!r}")
        if use_chat_template is not None and not isinstance(use_chat_template, bool):
            raise ValueError(f"Expected use_chat_template to be a bool or None, got {use_chat_template!r}")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"Expected cache_size to be an int >= 0, got {cache_size!r}")
        self.rubric = rubric
        self.mode = mode
        self.answers = (answers[0].strip(), answers[1].strip())
        self.template = template
        self.max_score = _check_positive_int("max_score", max_score)
        self.max_new_tokens = _check_positive_int("max_new_tokens", max_new_tokens)
        self.unparsed_score = float(unparsed_score)
        self.use_chat_template = use_chat_template
        self.device = torch.device(device)
        self.batch_size = _check_positive_int("batch_size", batch_size)
        self.cache_size = cache_size
        self.model_spec, self.tokenizer_spec = model, tokenizer
        self.model: PreTrainedModel | None = None
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.unparsed = 0
        """How many answers had no number (``score`` mode), over the judge's life."""
        self._cache: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()
        self._yes_ids: list[int] = []
        self._no_ids: list[int] = []

    # ------------------------------------------------------------------------------------------------ loading
    def _load(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        with self._lock:
            if self.model is None or self.tokenizer is None:
                dtype = None if isinstance(self.model_spec, PreTrainedModel) else torch.float32
                model, tokenizer = load_model(
                    self.model_spec, tokenizer=self.tokenizer_spec, device=self.device, dtype=dtype
                )
                if self.mode == "yes_probability":
                    yes, no = self.answers
                    self._yes_ids, self._no_ids = _single_token_ids(tokenizer, yes), _single_token_ids(tokenizer, no)
                    if not self._yes_ids or not self._no_ids:
                        raise ValueError(
                            f"Expected the judge's tokenizer to have single-token spellings of {yes!r} and {no!r} "
                            f"for mode='yes_probability', got ids {self._yes_ids} and {self._no_ids}; choose other "
                            "answers= or use mode='score'"
                        )
                self.model, self.tokenizer = model, tokenizer
        return self.model, self.tokenizer

    def judge_prompt(self, prompt: str, completion: str) -> str:
        """The text the judge reads for one pair (before any chat template)."""
        yes, no = self.answers
        instruction = _INSTRUCTIONS[self.mode].replace("{max_score}", str(self.max_score))
        instruction = instruction.replace("{yes}", yes).replace("{no}", no)
        values = {"rubric": self.rubric, "instruction": instruction, "prompt": prompt, "completion": completion}
        # one pass over the template: braces inside the filled-in texts are never read as fields
        return _FIELD.sub(lambda match: values[match.group(1)], self.template)

    def _encode(self, tokenizer: PreTrainedTokenizerBase, text: str, max_length: int) -> list[int]:
        chat = tokenizer.chat_template is not None if self.use_chat_template is None else self.use_chat_template
        if chat:
            text = str(  # with tokenize=False the template returns one string
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
                )
            )
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = tokenizer(text)["input_ids"]
        room = max_length - (self.max_new_tokens if self.mode == "score" else 1)
        return list(ids)[-room:]  # too long: the earliest tokens go, the question and answer cue stay

    # ------------------------------------------------------------------------------------------------ scoring
    def _judge(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        model, tokenizer = self._load()
        max_length = _max_length(model, tokenizer)
        encoded = [self._encode(tokenizer, self.judge_prompt(p, c), max_length) for p, c in pairs]
        scores = np.zeros(len(pairs))
        vocab_size = len(tokenizer)
        for batch in _batches([len(ids) for ids in encoded], self.batch_size):
            rows = batch.tolist()
            prompts = [encoded[i] for i in rows]
            with torch.inference_mode():
                if self.mode == "yes_probability":
                    sampler = KVSampler(model, len(rows), vocab_size=vocab_size, temperature=0.0)
                    logprobs = sampler.logits(prompts, [True] * len(rows)).log_softmax(dim=-1)  # (B, V)
                    yes = logprobs[:, self._yes_ids].logsumexp(dim=-1)  # (B,)
                    no = logprobs[:, self._no_ids].logsumexp(dim=-1)  # (B,)
                    scores[rows] = torch.sigmoid(yes - no).double().cpu().numpy()  # P(yes) / (P(yes) + P(no))
                else:
                    rules = StopRules(max_new_tokens=self.max_new_tokens, eos_token_id=tokenizer.eos_token_id)
                    answers = generate(model, prompts, rules, vocab_size=vocab_size, temperature=0.0)
                    for i, answer in zip(rows, answers):
                        scores[i] = self._parse(str(tokenizer.decode(answer.tokens, skip_special_tokens=True)))
        return scores

    def _parse(self, answer: str) -> float:
        match = _NUMBER.search(answer)
        if match is None or not math.isfinite(float(match.group())):
            self.unparsed += 1
            return self.unparsed_score
        return min(float(match.group()), self.max_score) / self.max_score

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], dones: Sequence[bool]) -> np.ndarray:
        pairs = list(zip(prompts, completions))
        missing = [pair for pair in dict.fromkeys(pairs) if pair not in self._cache]
        fresh = dict(zip(missing, self._judge(missing).tolist())) if missing else {}
        scores = np.array([fresh[pair] if pair in fresh else self._cache[pair] for pair in pairs])
        if self.cache_size:
            for pair in pairs:
                if pair in fresh:
                    self._cache[pair] = fresh[pair]
                self._cache.move_to_end(pair)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return scores

    def ranked(self) -> GroupRankReward:
        """The group-relative form: each completion's rank among its GRPO group by this judge's score, in [0, 1]
        (outside a group: the judge's own score). Shares this judge, its model and its cache."""
        return GroupRankReward(self)
