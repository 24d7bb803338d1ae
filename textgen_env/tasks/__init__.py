"""Verifiable tasks: procedural questions with checkable answers, difficulty levels, held-out splits and curricula.

>>> from textgen_env.tasks import make_task, TaskSampler
>>> task = make_task("arithmetic")
>>> item = TaskSampler(task, seed=0, split="train", difficulty=1).next()
>>> task.score(item.answer, item)["correct"]
1.0
"""

from textgen_env.tasks.answers import (
    CHECKERS,
    EXTRACTION_MODES,
    check_answer,
    expressions_equivalent,
    extract_answer,
    normalize_text,
    numbers_equal,
    parse_number,
    register_checker,
)
from textgen_env.tasks.arithmetic import ArithmeticTask
from textgen_env.tasks.base import ANSWER_FORMATS, Task, TaskBase, TaskItem, check_difficulty
from textgen_env.tasks.comparison import ComparisonTask
from textgen_env.tasks.countdown import CountdownTask
from textgen_env.tasks.counting import CountingTask
from textgen_env.tasks.curriculum import Curriculum
from textgen_env.tasks.expressions import evaluate
from textgen_env.tasks.jsonl import JsonlTask
from textgen_env.tasks.registry import available_tasks, make_task, register_task
from textgen_env.tasks.sampler import TaskSampler, eval_bucket, is_eval_item
from textgen_env.tasks.sorting import SortingTask
from textgen_env.tasks.strings import StringTask
from textgen_env.tasks.word_problems import WordProblemTask

__all__ = [
    "ANSWER_FORMATS",
    "CHECKERS",
    "EXTRACTION_MODES",
    "ArithmeticTask",
    "ComparisonTask",
    "CountdownTask",
    "CountingTask",
    "Curriculum",
    "JsonlTask",
    "SortingTask",
    "StringTask",
    "Task",
    "TaskBase",
    "TaskItem",
    "TaskSampler",
    "WordProblemTask",
    "available_tasks",
    "check_answer",
    "check_difficulty",
    "eval_bucket",
    "evaluate",
    "expressions_equivalent",
    "extract_answer",
    "is_eval_item",
    "make_task",
    "normalize_text",
    "numbers_equal",
    "parse_number",
    "register_checker",
    "register_task",
]
