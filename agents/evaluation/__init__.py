"""Measuring a policy: before/after evaluation on TextGen-v0, TextDialogue-v0 and TextEdit-v0, with standard errors."""

from agents.evaluation.dialogue import evaluate_dialogue, gain_by_scenario, rescore_dialogue_model
from agents.evaluation.edit import evaluate_edit
from agents.evaluation.statistics import MeanWithError, mean_with_error, paired_difference
from agents.evaluation.textgen import EvalResult, distinct_n, evaluate, gain_summary, generate_completions, paired_gain

__all__ = [
    "EvalResult",
    "MeanWithError",
    "distinct_n",
    "evaluate",
    "evaluate_dialogue",
    "evaluate_edit",
    "gain_by_scenario",
    "gain_summary",
    "generate_completions",
    "mean_with_error",
    "paired_difference",
    "paired_gain",
    "rescore_dialogue_model",
]
