"""The main job: train an agent on the env, evaluate before and after on held-out prompts, log, checkpoint, report.

`run_training(TrainSettings(...))` is what ``textgen-env train`` calls. The output folder receives
``progress.csv``, ``tensorboard/``, ``checkpoint/`` (atomic, resumable), ``model/`` (the trained LM in Hugging Face
format), ``samples.json`` (generations before and after), ``curves.png`` and ``report.json``.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from agents import agent_class
from agents.app.report import AnyResult, describe_eval, plot_curves, reward_report
from agents.app.run_folder import (
    RunLock,
    check_free_space,
    check_run_folders,
    check_writable,
    clear_run_folders,
    export_model,
    needed_bytes,
    resume_point,
    trim_progress,
)
from agents.app.run_logging import RunLogger
from agents.app.settings import ENVS, MAIN_JOB_OPTIONS, TOOL_PROMPT_TOKENS, TrainSettings, main_job_options
from agents.app.task_job import (
    WARMUP_FOLDER,
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

__all__ = ["ENVS", "MAIN_JOB_OPTIONS", "TrainSettings", "dialogue_env", "main_job_options", "run_training"]
# the settings live in agents.app.settings; imported from here as before


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
    checkpoint = resume_point(Path(settings.output), settings.resume)
    warmed = None
    if isinstance(env, TextGenVectorEnv) and settings.task is not None:
        warmed = warmed_start(settings, env, ctx.device(settings.device), ctx.world_size, checkpoint is not None)
    models: dict[str, Any] = {} if warmed is None else {"reference": warmed}  # the warmed model is the reference
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
    if (output / WARMUP_FOLDER / "warmup.json").is_file() and (settings.warmup_demos or settings.resume):
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
