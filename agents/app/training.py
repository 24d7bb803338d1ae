"""The main job: train an agent on the env, evaluate before and after on held-out prompts, log, checkpoint, report.

`run_training(TrainSettings(...))` is what ``textgen-env train`` calls. The output folder receives
``progress.csv``, ``tensorboard/``, ``checkpoint/`` (atomic, resumable), ``model/`` (the trained LM in Hugging Face
format), ``samples.json`` (generations before and after), ``curves.png`` and ``report.json``.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from agents import agent_class
from agents.app.report import AnyResult, describe_eval, plot_curves, reward_report
from agents.app.run_folder import (
    RunLock,
    check_free_space,
    check_model_not_replaced,
    check_output_location,
    check_run_folders,
    check_writable,
    clear_run_folders,
    export_model,
    needed_bytes,
    resume_point,
    trim_progress,
)
from agents.app.run_logging import RunLogger
from agents.app.task_job import (
    TASK_JOB_OPTIONS,
    WARMUP_FOLDER,
    apply_task_defaults,
    eval_difficulties,
    evaluate_task_run,
    parse_difficulty,
    parse_task_kwargs,
    task_report,
    warmed_start,
)
from agents.base import Agent
from agents.distributed import DistributedContext
from agents.edit import EditReinforce
from agents.evaluation import EvalResult, evaluate
from agents.evaluation.dialogue import evaluate_dialogue, gain_by_scenario
from agents.evaluation.edit import evaluate_edit
from agents.evaluation.monitors import HackingMonitor
from agents.evaluation.tasks import TaskEvalResult
from textgen_env import TextGenVectorEnv, make_prompt_source
from textgen_env.dialogue import TextDialogueVectorEnv
from textgen_env.edit import TextEditVectorEnv
from textgen_env.edit.drafts import make_draft_source
from textgen_env.models import DEFAULT_MODEL
from textgen_env.storage import atomic_write_json, fault_point, recover_folder
from textgen_env.tools import BUILTIN_TOOLS
from textgen_env.validation import check_positive as _positive

__all__ = ["ENVS", "MAIN_JOB_OPTIONS", "TrainSettings", "dialogue_env", "main_job_options", "run_training"]

TOOL_PROMPT_TOKENS = 320
"""The prompt window of a task run with tools: the tools' description lengthens each item's system prompt (the env's
default window, 64 tokens, would keep only its end)."""

ENVS = ("textgen", "dialogue", "edit")
"""The envs ``textgen-env train --env`` trains on: TextGen-v0, TextDialogue-v0, TextEdit-v0."""

MAIN_JOB_OPTIONS = {
    "kl_coef": 0.03,
    "kl_coef_min": 0.03,
    "kl_target": 5.5,
    "kl_horizon": 40,
    "learning_rate": 5e-5,
    "scale_rewards": False,
    "bf16_autocast": True,
}
"""Agent options of the main job (GRPO on SmolLM2-135M + sentiment): rewards centred in their group but not divided
by its std (a group of nearly equal rewards no longer gets full-size advantages out of noise), bfloat16 forwards,
a KL coefficient floored at 0.03 that rises while the KL passes 5.5 nats. Tuned on 14,400- and 19,200-token runs,
evaluated on 40 held-out prompts x 8 samples: this gained +0.44 ± 0.03 at 4.8 nats; with the floor at 0.05 and a
5-nat target +0.37 ± 0.03 at 4.5; the previous default (std division, 0.1 -> 4 nats, 8 slots, float32) +0.33 ± 0.03
at 3.8 (docs/results.md)."""


@dataclass
class TrainSettings:
    """Everything ``textgen-env train`` accepts."""

    agent: str = "grpo"
    """Algorithm name: ppo, reinforce, grpo or dqn (with env edit: ppo or reinforce, the edit agents)."""
    reward: str = "sentiment"
    """Registered reward name (see textgen_env.rewards.available_rewards())."""
    reward_model: str | None = None
    """With reward reward-model: the reward model's folder (what ``textgen-env reward-model train`` wrote)."""
    model: str | None = None
    """Model name or path; None = the embedded SmolLM2-135M-Instruct."""
    prompts: str = "movie_reviews"
    """Training prompts (built-in set, file)."""
    eval_prompts: str = "movie_reviews:eval"
    """Held-out prompts for the before/after evaluation."""
    steps: int | None = None
    """Budget: generated tokens across all episodes, or edit steps with env edit. None: 19,200 tokens (61
    iterations of 16 completions of 20 tokens, about 7 minutes of training on 2 CPU cores, under 10 with the
    evaluations), or 1,200 edit steps."""
    max_minutes: float | None = None
    """Opt-in wall-clock limit of the training loop; None (the default) stops on the token budget alone, so the same
    command and seed give the same updates on any machine."""
    seed: int = 0
    """Seed of everything random."""
    output: str = "runs/latest"
    """Output folder."""
    resume: bool = False
    """Continue from ``output/checkpoint`` when it exists."""
    overwrite: bool = False
    """Replace ``output/checkpoint`` and ``output/model`` even when they hold files this package did not write (by
    default such folders are refused before any work starts; the package's own are always replaced)."""
    num_envs: int = 16
    """Parallel env slots (16: the main job collects its 16 completions per iteration in one batched round)."""
    max_new_tokens: int = 20
    """Tokens per completion."""
    eval_samples_per_prompt: int = 8
    """Completions sampled per held-out prompt in the before/after evaluation (same seeds before and after)."""
    eval_every: int = 0
    """Evaluate on a quarter of the eval prompts every this many iterations, for held-out curves (0, the default:
    only before/after; 10 adds about 36 s to the main job). They draw from their own generators, so the trained
    weights are the same with or without them."""
    checkpoint_every: int = 20
    """Checkpoint every this many iterations (and at the end); a full-model checkpoint with its optimizer state is
    three model sizes (1.6 GB for SmolLM2-135M), so frequent ones cost real time."""
    tensorboard: bool = True
    """Write TensorBoard logs."""
    device: str = "cpu"
    """Device of the model work: cpu, cuda (under torchrun each rank takes cuda:LOCAL_RANK) or cuda:N."""
    env: str = "textgen"
    """textgen (TextGen-v0: one completion per prompt), dialogue (TextDialogue-v0: conversations with a user whose
    ratings are the reward; reward, prompts and eval_prompts are then unused) or edit (TextEdit-v0: the LM picks
    edits of drafts, trained by the edit agents; prompts and eval_prompts are then unused)."""
    scenarios: str = field(default="train", metadata={"aliases": ("--scenario",)})
    """With env dialogue: the training scenarios (a name or set: train, eval, all, refund, explain, ...)."""
    eval_scenarios: str = "eval"
    """With env dialogue: the held-out scenarios of the before/after evaluation."""
    user: str = "rule"
    """With env dialogue: rule (rule-based, cheap) or simulated (the model plays the user)."""
    max_turns: int = 3
    """With env dialogue: assistant replies per conversation at most."""
    drafts: str = "drafts:train"
    """With env edit: the drafts edited in training (a named set of the package or a file, one draft per line)."""
    eval_drafts: str = "drafts:eval"
    """With env edit: the held-out drafts of the before/after evaluation (eval_samples_per_prompt edits each)."""
    task: str | None = None
    """A task with checkable answers (``textgen_env.tasks.available_tasks()``, ``rg:<dataset>``): train on its
    ``train`` items with its score as the reward, evaluate accuracy on held-out ``eval`` items (reward, prompts and
    eval_prompts are then unused). Settings left at their defaults take the task job's (`TASK_JOB_SETTINGS`:
    steps, max_new_tokens, num_envs, eval_samples_per_prompt) and agent options (`TASK_JOB_OPTIONS`)."""
    task_kwargs: str | None = None
    """With task: the task's constructor arguments as a JSON object, e.g. '{"answer_format": "tag"}'."""
    difficulty: str | None = None
    """With task: the level to train on (an int), auto (the task library's curriculum) or none (the easiest)."""
    eval_difficulties: str | None = None
    """With task: comma-separated levels of the held-out evaluation (none: the trained level; all with auto)."""
    eval_items: int = 64
    """With task: held-out items per evaluated level (eval_samples_per_prompt samples each, and one greedy)."""
    format_weight: float = 0.0
    """With task: reward for an answer in the task's format, on top of 1 for a correct one."""
    tools: str | None = None
    """With task: comma-separated built-in tools the policy may call (calculator, python, search; described in the
    system prompt). The env runs each call and inserts its result as env tokens, never actions, so never in the loss
    or the KL; the held-out evaluation steps the env so that calls run there too, and reports the share of
    completions that call a tool and the calls per completion. Prompts may then be up to `TOOL_PROMPT_TOKENS` long."""
    warmup_demos: int = 0
    """With task and tools: before RL, fine-tune the model on this many scripted demonstrations (train items: a call
    of the first tool on the item's expression, the env's result, the reference answer; `agents.warmup`); the warmed
    model is RL's start, its KL reference and the "before" of the evaluation (saved in ``output/warmup``). 0: none."""
    warmup_epochs: int = 3
    """With warmup_demos: passes over the demonstrations."""
    warmup_learning_rate: float = 1e-4
    """With warmup_demos: AdamW learning rate of the warm-up."""
    agent_options: dict[str, Any] | None = None
    """Config overrides for the agent (learning_rate, kl_coef, kl_target, lora_rank, ...); None: the main job's
    (`main_job_options`): GRPO with lr 5e-5, bfloat16 forwards, group-centred rewards and a KL coefficient that
    starts at 0.03 and rises (never below 0.03) while the KL exceeds 5.5 nats per completion."""

    def __post_init__(self) -> None:
        if self.env not in ENVS:
            raise ValueError(f"Expected env to be one of {list(ENVS)}, got {self.env!r}")
        config_class = agent_class(self.agent, self.env).config_class  # raises on an unknown agent
        if self.task is not None:
            apply_task_defaults(self, {f.name: f.default for f in fields(TrainSettings)})
        _positive("eval_items", self.eval_items, integer=True)
        _positive("warmup_demos", self.warmup_demos, integer=True, allow_zero=True)
        _positive("warmup_epochs", self.warmup_epochs, integer=True)
        _positive("warmup_learning_rate", self.warmup_learning_rate)
        if self.warmup_demos and self.tools is None:
            raise ValueError(f"Expected warmup_demos only with tools (--tools ...), got {self.warmup_demos} without")
        if self.tools is not None:
            self.tool_names()  # raises on an unknown name
            if self.task is None:
                raise ValueError(
                    f"Expected tools only with a task (--task NAME --tools ...), got tools={self.tools!r} without one"
                )
        if self.steps is None:
            self.steps = 1_200 if self.env == "edit" else 19_200
        _positive("max_turns", self.max_turns, integer=True)
        if (self.reward == "reward-model") != (self.reward_model is not None):
            raise ValueError(
                "Expected reward_model (--reward-model FOLDER) exactly when reward is 'reward-model', got "
                f"reward={self.reward!r} and reward_model={self.reward_model!r}"
            )
        for name in ("steps", "num_envs", "max_new_tokens", "eval_samples_per_prompt"):
            _positive(name, getattr(self, name), integer=True)
        for name in ("eval_every", "checkpoint_every"):
            _positive(name, getattr(self, name), integer=True, allow_zero=True)
        if self.max_minutes is not None:
            _positive("max_minutes", self.max_minutes)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"Expected seed to be an int, got {self.seed!r}")
        check_output_location(self.output)
        check_model_not_replaced(self.model, self.output)
        if self.agent_options is None:
            self.agent_options = main_job_options(self.agent, self.env, self.task)
        if not isinstance(self.agent_options, dict):
            raise TypeError(f"Expected agent_options to be a dict, got {type(self.agent_options).__name__}")
        config_class.from_dict({**self.agent_options, "seed": self.seed})  # unknown or invalid options raise here

    def tool_names(self) -> list[str]:
        """`tools` as a list of built-in names (empty without tools)."""
        if self.tools is None:
            return []
        names = [name.strip() for name in self.tools.split(",") if name.strip()]
        unknown = [name for name in names if name not in BUILTIN_TOOLS]
        if unknown or not names:
            raise ValueError(f"Expected tools among {list(BUILTIN_TOOLS)} (comma-separated), got {self.tools!r}")
        return names

    def reward_kwargs(self) -> dict[str, Any] | None:
        """The reward's constructor arguments: the reward model's folder for reward-model, else none."""
        return None if self.reward_model is None else {"path": self.reward_model}

    @property
    def budget(self) -> int:
        """`steps` as resolved for the env (tokens, or edit steps)."""
        assert self.steps is not None  # __post_init__ resolved it
        return self.steps


def main_job_options(agent: str, env: str = "textgen", task: str | None = None) -> dict[str, Any]:
    """The main job's agent options for `agent`: those of `MAIN_JOB_OPTIONS` (with a task: `TASK_JOB_OPTIONS`) its
    config has (``scale_rewards`` and ``group_size`` are GRPO's), without the KL settings for DQN (it has none); none
    for the edit agents (their configs' defaults)."""
    if env == "edit":
        return {}
    names = {f.name for f in fields(agent_class(agent, env).config_class)}
    dqn = agent.lower() == "dqn"
    chosen = TASK_JOB_OPTIONS if task is not None else MAIN_JOB_OPTIONS
    return {k: v for k, v in chosen.items() if k in names and not (dqn and k.startswith("kl_"))}


def dialogue_env(
    settings: TrainSettings, scenarios: str, model: Any, device: str | torch.device
) -> TextDialogueVectorEnv:
    """The conversations `settings` describe (slots, user, turns, reply tokens) in `scenarios`, with `model`."""
    return TextDialogueVectorEnv(
        num_envs=settings.num_envs,
        model=model,
        scenarios=scenarios,
        user=settings.user,
        max_turns=settings.max_turns,
        max_reply_tokens=settings.max_new_tokens,
        device=device,
    )


def _build(settings: TrainSettings, ctx: DistributedContext) -> tuple[Any, Agent]:
    env: TextGenVectorEnv | TextDialogueVectorEnv | TextEditVectorEnv
    if settings.env == "edit":
        env = TextEditVectorEnv(
            num_envs=settings.num_envs,
            model=settings.model,
            drafts=settings.drafts,
            reward=settings.reward,
            reward_kwargs=settings.reward_kwargs(),
            device=ctx.device(settings.device),
        )
    elif settings.env == "dialogue":
        env = dialogue_env(settings, settings.scenarios, settings.model, ctx.device(settings.device))
    elif settings.task is not None:
        env = TextGenVectorEnv(
            num_envs=settings.num_envs,
            model=settings.model,
            task=settings.task,
            task_kwargs=parse_task_kwargs(settings.task_kwargs),
            difficulty=parse_difficulty(settings.difficulty),
            format_weight=settings.format_weight,
            tools=settings.tool_names(),
            **({"max_prompt_tokens": TOOL_PROMPT_TOKENS} if settings.tools else {}),
            max_new_tokens=settings.max_new_tokens,
            device=ctx.device(settings.device),
        )
    else:
        env = TextGenVectorEnv(
            num_envs=settings.num_envs,
            model=settings.model,
            prompts=settings.prompts,
            reward=settings.reward,
            reward_kwargs=settings.reward_kwargs(),
            max_new_tokens=settings.max_new_tokens,
            device=ctx.device(settings.device),
        )
    cls = agent_class(settings.agent, settings.env)
    warmed = None
    if isinstance(env, TextGenVectorEnv) and settings.task is not None:
        warmed = warmed_start(settings, env, ctx.device(settings.device), ctx.world_size)
    models: dict[str, Any] = {} if warmed is None else {"reference": warmed}  # the warmed model is the reference
    checkpoint = resume_point(Path(settings.output), settings.resume)
    if checkpoint is not None:
        return env, cls.load(checkpoint, env, distributed=ctx, **models)
    options = settings.agent_options
    assert options is not None  # TrainSettings.__post_init__ filled it
    if warmed is not None:
        models["model"] = copy.deepcopy(warmed)  # and RL's start
    return env, cls(env, seed=settings.seed, distributed=ctx, **models, **options)


def _evaluate(agent: Agent, env: Any, settings: TrainSettings) -> AnyResult:
    if settings.task is not None:  # held-out items of the task: accuracy at T = 1, greedy, pass@k, ...
        difficulty = parse_difficulty(settings.difficulty)
        return evaluate_task_run(
            agent,
            env,
            difficulties=eval_difficulties(env, settings.eval_difficulties, difficulty),
            items=settings.eval_items,
            samples=settings.eval_samples_per_prompt,
            seed=settings.seed,
        )
    if settings.env == "edit":  # held-out drafts, edited with the same seeds before and after
        assert isinstance(agent, EditReinforce)  # agent_class(..., "edit")
        drafts = [p.text for p in make_draft_source(settings.eval_drafts).prompts]
        return evaluate_edit(agent, env, drafts, samples_per_draft=settings.eval_samples_per_prompt, seed=settings.seed)
    if settings.env == "dialogue":  # held-out scenarios, conversations with the same seeds before and after
        model = env.loaded_model if env.loaded_model is not None else settings.model
        eval_env = dialogue_env(settings, settings.eval_scenarios, model, env.config.device)
        return evaluate_dialogue(agent, eval_env, rounds=settings.eval_samples_per_prompt, seed=settings.seed)
    assert isinstance(env, TextGenVectorEnv)  # settings.env == "textgen"
    return evaluate(
        agent.policy,
        env,
        settings.eval_prompts,
        samples_per_prompt=settings.eval_samples_per_prompt,
        temperature=agent.config.temperature,
        seed=settings.seed,
    )


def _load_or_run_before(agent: Agent, env: Any, settings: TrainSettings, path: Path) -> AnyResult:
    """The evaluation before training: from ``eval_before.json`` when resuming a run that has it, else run now."""
    if path.is_file() and settings.resume:
        data = json.loads(path.read_text(encoding="utf-8"))
        stored: AnyResult
        if settings.task is not None:
            stored = TaskEvalResult.from_dict(data)
            stored_key = (stored.samples_per_item, stored.seed)
        else:
            stored = EvalResult.from_dict(data)
            stored_key = (stored.samples_per_prompt, stored.seed)
        if stored_key != (settings.eval_samples_per_prompt, settings.seed):
            raise ValueError(  # the policy is no longer the starting one: it cannot be measured "before" again
                f"Expected the resumed run's eval_samples_per_prompt and seed {stored_key} from {str(path)!r}, got "
                f"({settings.eval_samples_per_prompt}, {settings.seed})"
            )
        return stored
    result = _evaluate(agent, env, settings)
    atomic_write_json(path, result.to_dict())
    return result


def run_training(settings: TrainSettings) -> dict[str, Any]:
    """Run the main job; returns the report (also written to ``output/report.json``).

    Refuses to start (before any training) when ``checkpoint/`` or ``model/`` in the output holds files the package
    did not write (unless ``overwrite``), the output folder is not writable, its disk lacks the space of two
    checkpoints and the exported model, or another run holds the folder's lock; see `agents.app.run_folder` for what a
    kill leaves and how ``resume`` continues from it.

    Under torchrun every rank trains (`agents.distributed`); rank 0 alone evaluates, logs and writes files, and
    returns the report (the other ranks return an empty dict).
    """
    ctx = DistributedContext.from_environment(settings.device)
    output = Path(settings.output)
    if ctx.is_main:
        check_run_folders(output, overwrite=settings.overwrite)
    if not ctx.is_main:
        ctx.barrier()  # rank 0 has locked the folder and recovered its checkpoint
        torch.manual_seed(settings.seed)
        _, agent = _build(settings, ctx)
        agent.learn(settings.budget, checkpoint_dir=output / "checkpoint", checkpoint_every=settings.checkpoint_every)
        return {}
    check_writable(output)
    with RunLock(output):
        if settings.overwrite:
            clear_run_folders(output)
        recover_folder(output / "checkpoint")
        ctx.barrier()
        return _run(settings, output, ctx)


def _run(settings: TrainSettings, output: Path, ctx: DistributedContext) -> dict[str, Any]:
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    env, agent = _build(settings, ctx)
    check_free_space(output, needed_bytes(agent))
    trim_progress(output / "progress.csv", agent.iteration)  # iterations after the checkpoint are redone
    before = _load_or_run_before(agent, env, settings, output / "eval_before.json")
    logger = RunLogger(output, settings.budget, agent.num_timesteps, tensorboard=settings.tensorboard)
    logger.write(describe_eval("before", before))
    quick_eval = [p.text for p in make_prompt_source(settings.eval_prompts).prompts][::4]  # a quarter, for curves
    loop_start = time.perf_counter()
    eval_seconds = 0.0
    monitor = HackingMonitor(issue_warnings=False)  # reward-hacking warnings go to the log and report.json

    def on_iteration(trained: Agent, stats: dict[str, float]) -> bool:
        nonlocal eval_seconds
        stats["wall_seconds"] = time.perf_counter() - started
        if settings.eval_every and settings.env == "textgen" and trained.iteration % settings.eval_every == 0:
            assert isinstance(env, TextGenVectorEnv)  # settings.env == "textgen"
            eval_start = time.perf_counter()
            quick = evaluate(
                trained.policy, env, quick_eval, samples_per_prompt=2, temperature=trained.config.temperature
            )
            eval_seconds += time.perf_counter() - eval_start
            stats.update(
                {"eval/reward_mean": quick.reward.mean, "eval/kl": quick.kl.mean, "eval/distinct2": quick.distinct2}
            )
        for warning in monitor.observe(trained, stats):  # adds monitor/... keys to the stats it logs
            logger.write(f"WARNING {warning.message}")
        logger.log(stats)
        fault_point("iteration:logged")
        out_of_time = settings.max_minutes is not None and time.perf_counter() - loop_start > settings.max_minutes * 60
        return not out_of_time

    agent.learn(
        settings.budget,
        callback=on_iteration,
        checkpoint_dir=output / "checkpoint",
        checkpoint_every=settings.checkpoint_every,
    )
    train_seconds = time.perf_counter() - loop_start
    logger.close()
    after = _evaluate(agent, env, settings)
    atomic_write_json(output / "eval_after.json", after.to_dict())
    fault_point("eval_after:written")
    export_model(agent, output / "model")
    model_name = settings.model or DEFAULT_MODEL
    reward = {
        "textgen": settings.reward,
        "dialogue": f"{settings.user} user's rating",
        "edit": f"{settings.reward} gain of the edited draft",
    }[settings.env]
    if isinstance(before, TaskEvalResult) and isinstance(after, TaskEvalResult):
        measures, reward = task_report(before, after), f"task {settings.task}: correct"
    else:
        assert isinstance(before, EvalResult) and isinstance(after, EvalResult)  # both from the same _evaluate
        measures = reward_report(before, after)
    report = {
        "agent": settings.agent,
        "model": model_name,
        "reward": reward,
        **measures,
        "iterations": agent.iteration,
        "timesteps": agent.num_timesteps,
        "train_seconds": train_seconds,
        "train_tokens_per_second": agent.num_timesteps / max(train_seconds - eval_seconds, 1e-9),
        "wall_seconds": time.perf_counter() - started,
        "settings": {k: v for k, v in asdict(settings).items()},
        "agent_config": agent.config.to_dict(),
        "world_size": ctx.world_size,
        "monitors": monitor.report(),
    }
    if settings.env == "dialogue":
        assert isinstance(before, EvalResult) and isinstance(after, EvalResult)
        report["eval_gain_by_scenario"] = gain_by_scenario(before, after)
    if settings.warmup_demos:  # what the warm-up did (its model is the "before")
        report["warmup"] = json.loads((output / WARMUP_FOLDER / "warmup.json").read_text(encoding="utf-8"))
    atomic_write_json(output / "samples.json", {"before": before.samples, "after": after.samples})
    atomic_write_json(output / "report.json", report)
    plot_curves(
        output / "progress.csv",
        output / "curves.png",
        title=f"{settings.agent.upper()} on {model_name} · reward: {report['reward']}",
        eval_before=report["eval_reward_before"],
        eval_after=report["eval_reward_after"],
    )
    return report
