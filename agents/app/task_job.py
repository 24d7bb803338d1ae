"""The task main job's parts: its tuned defaults, its env, its held-out evaluation and its report (``train --task``).

``textgen-env train --task arithmetic`` trains on the task's ``train`` items with the task's score as the reward and
measures, before and after, on held-out ``eval`` items with the same seeds: accuracy at T = 1 (k samples per item),
greedy accuracy, pass@k, format rate, length and KL, overall and by difficulty (`agents.evaluation.tasks`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from agents.base import Agent
from agents.evaluation.tasks import TaskEvalResult, evaluate_task, held_out_items, paired_task_gain
from agents.policy import LMPolicy
from agents.warmup import supervised_warmup, tool_call_demonstrations
from textgen_env import TextGenVectorEnv, load_model
from textgen_env.storage import atomic_folder, folder_kind, recover_folder
from textgen_env.tasks import TaskSampler
from textgen_env.tools import BUILTIN_TOOLS

__all__ = [
    "TASK_JOB_OPTIONS",
    "TASK_JOB_SETTINGS",
    "apply_task_defaults",
    "describe_task_eval",
    "eval_difficulties",
    "eval_task_model",
    "evaluate_task_run",
    "parse_difficulty",
    "parse_task_kwargs",
    "task_report",
    "task_summary_lines",
    "tool_names",
    "warmed_start",
]

TOOL_PROMPT_TOKENS = 320
"""The prompt window of a task run with tools: the tools' description lengthens each item's system prompt (the env's
default window, 64 tokens, would keep only its end)."""

WARMUP_FOLDER = "warmup"
"""The run folder's subfolder that holds the warmed-up start model (``--warmup-demos``) and ``warmup.json``."""

TASK_JOB_SETTINGS: dict[str, Any] = {
    "steps": 3_000,
    "max_new_tokens": 8,
    "num_envs": 16,
    "eval_samples_per_prompt": 4,
}
"""Run settings of ``train --task`` that replace `TrainSettings` defaults left untouched on the command line (see
docs/tasks_env.md, "The task main job", for the tuning runs behind them)."""
TASK_JOB_OPTIONS: dict[str, Any] = {
    "learning_rate": 3e-5,
    "kl_coef": 0.02,
    "kl_coef_min": 0.02,
    "kl_target": None,
    "group_size": 8,
    "scale_rewards": False,
    "bf16_autocast": True,
}
"""Agent options of the task main job (GRPO on SmolLM2-135M-Instruct): groups of 8 completions of one item,
rewards centred in their group, a fixed KL coefficient (see docs/tasks_env.md)."""


def apply_task_defaults(settings: Any, defaults: dict[str, Any]) -> None:
    """Check `settings`' task fields (a `TrainSettings` with a task) and give the settings still at their `defaults`
    the task job's values (`TASK_JOB_SETTINGS`)."""
    if settings.env != "textgen":
        raise ValueError(f"Expected env='textgen' with task={settings.task!r}, got env={settings.env!r}")
    parse_difficulty(settings.difficulty)  # raises on a bad value
    parse_task_kwargs(settings.task_kwargs)
    if isinstance(settings.format_weight, bool) or not isinstance(settings.format_weight, (int, float)):
        raise ValueError(f"Expected format_weight to be a number, got {settings.format_weight!r}")
    for name, value in TASK_JOB_SETTINGS.items():
        if getattr(settings, name) == defaults[name]:
            setattr(settings, name, value)


def parse_difficulty(text: str | None) -> int | str | None:
    """A ``--difficulty`` value: None, ``"auto"`` or an int."""
    if text is None or text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"Expected difficulty to be an int, 'auto' or none, got {text!r}") from None


def parse_task_kwargs(text: str | None) -> dict[str, Any]:
    """A ``--task-kwargs`` value: a JSON object (None: {})."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"Expected task_kwargs to be a JSON object, got {text!r} ({error.msg})") from None
    if not isinstance(value, dict):
        raise ValueError(f"Expected task_kwargs to be a JSON object, got {text!r}")
    return value


def eval_difficulties(env: TextGenVectorEnv, text: str | None, difficulty: int | str | None) -> list[int]:
    """The levels of the held-out evaluation: ``--eval-difficulties`` (comma-separated), else the trained level, else
    (``auto``) every level of the task."""
    levels = list(env.task.difficulties)
    if text:
        try:
            chosen = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise ValueError(f"Expected eval_difficulties to be comma-separated ints, got {text!r}") from None
        bad = [level for level in chosen if level not in levels]
        if bad or not chosen:
            raise ValueError(f"Expected eval_difficulties among {levels}, got {text!r}")
        return chosen
    if isinstance(difficulty, int):
        return [difficulty]
    return levels if difficulty == "auto" else levels[:1]


def evaluate_task_run(
    agent: Agent, env: TextGenVectorEnv, *, difficulties: list[int], items: int, samples: int, seed: int
) -> TaskEvalResult:
    """The held-out evaluation of the agent's policy: `items` eval-split items per level, `samples` per item at the
    agent's temperature, and greedy; the same items and seeds whenever the arguments are the same."""
    chosen = held_out_items(env.task, difficulties=difficulties, items_per_difficulty=items, seed=seed)
    return evaluate_task(
        agent.policy, env, chosen, samples_per_item=samples, temperature=agent.config.temperature, seed=seed
    )


def describe_task_eval(label: str, result: TaskEvalResult) -> str:
    s = result.summary()
    return (
        f"eval {label}: accuracy {s['accuracy']:.3f} ± {s['accuracy_se']:.3f} (T={s['temperature']:g}), greedy "
        f"{s['greedy_accuracy']:.3f} ± {s['greedy_accuracy_se']:.3f}, pass@{s['samples_per_item']} "
        f"{s['pass_at_k']:.3f}, format {s['format_rate']:.3f}, KL {s['kl']:.2f}, length {s['length']:.1f} "
        f"({s['items']} items x {s['samples_per_item']} samples)"
    )


def task_report(before: TaskEvalResult, after: TaskEvalResult) -> dict[str, Any]:
    """The task fields of ``report.json``: the main job's reward keys hold the accuracy at T = 1, so curves and
    summaries read the same, and ``task_eval`` holds before, after and the paired gains of every measure."""
    b, a, gain = before.summary(), after.summary(), paired_task_gain(before, after)
    return {
        "eval_reward_before": b["accuracy"],
        "eval_reward_before_se": b["accuracy_se"],
        "eval_reward_after": a["accuracy"],
        "eval_reward_after_se": a["accuracy_se"],
        "eval_gain": gain["accuracy"],
        "eval_gain_se": gain["accuracy_se"],
        "eval_kl_before": b["kl"],
        "eval_kl": a["kl"],
        "eval_kl_se": a["kl_se"],
        "eval_length_before": b["length"],
        "eval_length_after": a["length"],
        "eval_prompts": a["items"],
        "eval_samples_per_prompt": a["samples_per_item"],
        "eval_completions": a["items"] * a["samples_per_item"],
        "task_eval": {"before": b, "after": a, "gain": gain},
    }


def task_summary_lines(report: dict[str, Any]) -> list[str]:
    """What ``train --task`` prints at the end: each measure before -> after with its paired gain, by difficulty."""
    task = report["task_eval"]
    b, a, gain = task["before"], task["after"], task["gain"]
    lines = [
        f"held-out evaluation of task {a['task']!r} ({a['items']} eval-split items x {a['samples_per_item']} samples "
        f"at T={a['temperature']:g}, shared seeds; SE over items):"
    ]
    names = {"accuracy": "accuracy (T=1)", "greedy_accuracy": "greedy accuracy", "pass_at_k": "pass@k"}
    names.update({"format_rate": "format rate", "length": "length (tokens)", "kl": "KL (nats)"})
    if "tool_use" in gain:  # an env with tools
        names.update({"tool_use": "tool use", "tool_calls": "tool calls"})
    for key, label in names.items():
        lines.append(
            f"  {label:<16} {b[key]:.3f} -> {a[key]:.3f}   paired gain {gain[key]:+.3f} ± {gain[f'{key}_se']:.3f}"
        )
    for level, row in a["by_difficulty"].items():
        change = gain["by_difficulty"][level]["accuracy"]
        lines.append(
            f"  difficulty {level}: accuracy {b['by_difficulty'][level]['accuracy']['mean']:.3f} -> "
            f"{row['accuracy']['mean']:.3f} (gain {change['mean']:+.3f} ± {change['se']:.3f}, {row['items']} items)"
        )
    return lines


def eval_task_model(args: Any) -> dict[str, Any]:
    """``textgen-env eval --task NAME --model PATH``: the trained model on held-out items (with ``--gain`` also the
    reference on the same items and seeds, and the paired gains); written to ``--output`` when given."""
    from agents.policy import LMPolicy
    from textgen_env import load_model
    from textgen_env.storage import atomic_write_json

    max_new_tokens = TASK_JOB_SETTINGS["max_new_tokens"] if args.max_new_tokens == 20 else args.max_new_tokens
    tools = tool_names(getattr(args, "tools", None))
    env = TextGenVectorEnv(
        num_envs=8 if tools else 1,  # with tools it steps the env: 8 slots at a time
        model=args.reference,
        task=args.task,
        task_kwargs=parse_task_kwargs(args.task_kwargs),
        max_new_tokens=max_new_tokens,
        tools=tools,
        **({"max_prompt_tokens": TOOL_PROMPT_TOKENS} if tools else {}),
    )
    levels = eval_difficulties(env, args.difficulties, None)
    if isinstance(args.items, bool) or args.items < 1:
        raise ValueError(f"Expected --items to be an int >= 1, got {args.items!r}")
    items = held_out_items(env.task, difficulties=levels, items_per_difficulty=args.items, seed=args.seed)
    model, tokenizer = load_model(args.model)
    settings = dict(samples_per_item=args.samples, temperature=args.temperature, seed=args.seed)
    after = evaluate_task(LMPolicy(model, tokenizer, value_head=False, reference=env.model), env, items, **settings)
    result: dict[str, Any] = {"after": after.summary()}
    if args.gain:
        reference = LMPolicy(env.model, tokenizer, value_head=False, reference=env.model)
        before = evaluate_task(reference, env, items, **settings)
        result = {"before": before.summary(), "after": after.summary(), "gain": paired_task_gain(before, after)}
    if args.output:
        atomic_write_json(args.output, result)
    return result


def warmed_start(
    settings: Any, env: TextGenVectorEnv, device: str | torch.device, world_size: int, resuming: bool
) -> Any:
    """The warmed-up model a ``--tools`` task run starts from and measures its KL to, or None without a warm-up.

    A new run with ``warmup_demos`` fine-tunes the start model on that many tool-call demonstrations of train items
    (`agents.warmup`) and writes it to ``output/warmup`` (with ``warmup.json``: the demonstrations and each epoch's
    loss), replacing an older one; a new run without a warm-up removes an older run's. A resumed run takes
    ``output/warmup`` whenever the folder holds one, whatever the flag says, so that its KL reference is the model
    it started from; resuming with ``warmup_demos`` a run that did not warm up is refused."""
    folder = Path(settings.output) / WARMUP_FOLDER
    recover_folder(folder)
    if resuming:
        if folder_kind(folder) == WARMUP_FOLDER:
            return load_model(folder, device=device)[0]
        if settings.warmup_demos:
            raise ValueError(
                f"Expected {str(folder)!r} (the warmed-up start of the run being resumed) with warmup_demos="
                f"{settings.warmup_demos}, got none: the run did not warm up; resume without --warmup-demos"
            )
        return None
    if not settings.warmup_demos:
        if folder_kind(folder) == WARMUP_FOLDER:  # an older run's (ours): a resume of this one must not take it
            shutil.rmtree(folder)
        return None
    if world_size > 1:
        raise ValueError(f"Expected the warm-up in one process, got world size {world_size}; drop --warmup-demos")
    model, tokenizer = load_model(settings.model, device=device)
    level = parse_difficulty(settings.difficulty)
    first = level if isinstance(level, int) else env.task.difficulties[0]
    sampler = TaskSampler(env.task, seed=settings.seed, split="train", difficulty=first)
    items = [sampler.next() for _ in range(settings.warmup_demos)]
    stats = supervised_warmup(
        LMPolicy(model, tokenizer, value_head=False),
        tool_call_demonstrations(env, items),
        epochs=settings.warmup_epochs,
        learning_rate=settings.warmup_learning_rate,
        seed=settings.seed,
    )
    with atomic_folder(folder, name=WARMUP_FOLDER) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "warmup.json").write_text(json.dumps(stats), encoding="utf-8")
    warmed: PreTrainedModel = load_model(folder, device=device)[0]
    return warmed


def tool_names(text: str | None) -> list[str]:
    """A ``--tools`` value as a list of built-in names (empty for None)."""
    if text is None:
        return []
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BUILTIN_TOOLS]
    if unknown or not names:
        raise ValueError(f"Expected tools among {list(BUILTIN_TOOLS)} (comma-separated), got {text!r}")
    return names
