"""The main job: train an agent on the env, evaluate before and after on held-out prompts, log, checkpoint, report.

`run_training(TrainSettings(...))` is what ``textgen-env train`` calls. The output folder receives
``progress.csv``, ``tensorboard/``, ``checkpoint/`` (atomic, resumable), ``model/`` (the trained LM in Hugging Face
format), ``samples.json`` (generations before and after), ``curves.png`` and ``report.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from agents import agent_class
from agents.base import Agent
from agents.evaluation import evaluate
from agents.report import plot_curves, write_json_atomic
from agents.run_logging import RunLogger
from textgen_env import TextGenVectorEnv, make_prompt_source
from textgen_env.models import DEFAULT_MODEL

__all__ = ["MAIN_JOB_OPTIONS", "TrainSettings", "run_training"]

MAIN_JOB_OPTIONS = {"kl_coef": 0.1, "kl_coef_min": 0.1, "kl_target": 3.0, "kl_horizon": 40, "learning_rate": 1.3e-5}
"""Agent options of the main job. Measured on SmolLM2 + sentiment, 40 iterations: lr 2e-5 with a KL coefficient
near 0.04 reached +0.65 sentiment but 10.8 nats; raising the coefficient (even to 1.9) did not stop the drift, a
lower learning rate does."""


@dataclass
class TrainSettings:
    """Everything ``textgen-env train`` accepts."""

    agent: str = "ppo"
    """Algorithm name: ppo, reinforce, grpo or dqn."""
    reward: str = "sentiment"
    """Registered reward name (see textgen_env.rewards.available_rewards())."""
    model: str | None = None
    """Model name or path; None = the embedded SmolLM2-135M-Instruct."""
    prompts: str = "movie_reviews"
    """Training prompts (built-in set, file)."""
    eval_prompts: str = "movie_reviews:eval"
    """Held-out prompts for the before/after evaluation."""
    steps: int = 40_000
    """Token budget (generated tokens across all episodes)."""
    max_minutes: float | None = None
    """Wall-clock budget for the training loop (evaluations excluded); None = no limit."""
    seed: int = 0
    """Seed of everything random."""
    output: str = "runs/latest"
    """Output folder."""
    resume: bool = False
    """Continue from ``output/checkpoint`` when it exists."""
    num_envs: int = 8
    """Parallel env slots."""
    max_new_tokens: int = 20
    """Tokens per completion."""
    eval_every: int = 10
    """Evaluate on a quarter of the eval prompts every this many iterations (0: only before/after)."""
    checkpoint_every: int = 20
    """Checkpoint every this many iterations (and at the end); a full-model checkpoint with its optimizer state is
    three model sizes (1.6 GB for SmolLM2-135M), so frequent ones cost real time."""
    tensorboard: bool = True
    """Write TensorBoard logs."""
    agent_options: dict[str, Any] = field(default_factory=lambda: dict(MAIN_JOB_OPTIONS))
    """Config overrides for the agent (learning_rate, kl_coef, kl_target, lora_rank, ...); by default lr 1.3e-5 and a
    KL coefficient that starts at 0.1 and rises (never below 0.1) while the KL exceeds 3 nats per completion."""


def _build(settings: TrainSettings) -> tuple[TextGenVectorEnv, Agent]:
    env = TextGenVectorEnv(
        num_envs=settings.num_envs,
        model=settings.model,
        prompts=settings.prompts,
        reward=settings.reward,
        max_new_tokens=settings.max_new_tokens,
    )
    cls = agent_class(settings.agent)
    checkpoint = Path(settings.output) / "checkpoint"
    if settings.resume and (checkpoint / "agent.pt").is_file():
        return env, cls.load(checkpoint, env)
    if settings.resume and not checkpoint.exists():
        raise FileNotFoundError(f"Expected a checkpoint to resume from in {str(checkpoint)!r}, got none")
    return env, cls(env, seed=settings.seed, **settings.agent_options)


def _eval_summary(result) -> dict[str, float]:
    return {"reward": result.reward_mean, "kl": result.kl_mean, "distinct2": result.distinct2}


def run_training(settings: TrainSettings) -> dict[str, Any]:
    """Run the main job; returns the report (also written to ``output/report.json``)."""
    started = time.perf_counter()
    output = Path(settings.output)
    output.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    env, agent = _build(settings)
    eval_prompts = settings.eval_prompts
    before_path = output / "eval_before.json"
    if before_path.is_file() and settings.resume:
        before = json.loads(before_path.read_text())
    else:
        result = evaluate(agent.policy, env, eval_prompts, seed=settings.seed)
        before = {**_eval_summary(result), "samples": result.samples}
        write_json_atomic(before_path, before)
    logger = RunLogger(output, settings.steps, agent.num_timesteps, tensorboard=settings.tensorboard)
    logger.write(
        f"eval before: reward {before['reward']:.3f}, KL {before['kl']:.2f}, distinct-2 {before['distinct2']:.3f}"
    )
    loop_start = time.perf_counter()
    quick_eval = [p.text for p in make_prompt_source(eval_prompts).prompts][::4]  # a quarter, for the curves

    def on_iteration(trained: Agent, stats: dict[str, float]) -> bool:
        stats["wall_seconds"] = time.perf_counter() - started
        if settings.eval_every and trained.iteration % settings.eval_every == 0:
            quick = evaluate(trained.policy, env, quick_eval, seed=settings.seed)
            stats.update(
                {"eval/reward_mean": quick.reward_mean, "eval/kl": quick.kl_mean, "eval/distinct2": quick.distinct2}
            )
        logger.log(stats)
        out_of_time = settings.max_minutes is not None and time.perf_counter() - loop_start > settings.max_minutes * 60
        return not out_of_time

    agent.learn(
        settings.steps,
        callback=on_iteration,
        checkpoint_dir=output / "checkpoint",
        checkpoint_every=settings.checkpoint_every,
    )
    logger.close()
    result = evaluate(agent.policy, env, eval_prompts, seed=settings.seed)
    after = {**_eval_summary(result), "samples": result.samples}
    _export_model(agent, output / "model")
    model_name = settings.model or DEFAULT_MODEL
    report = {
        "agent": settings.agent,
        "model": model_name,
        "reward": settings.reward,
        "eval_reward_before": before["reward"],
        "eval_reward_after": after["reward"],
        "eval_kl_before": before["kl"],
        "eval_kl": after["kl"],
        "eval_distinct2_before": before["distinct2"],
        "eval_distinct2_after": after["distinct2"],
        "iterations": agent.iteration,
        "timesteps": agent.num_timesteps,
        "wall_seconds": time.perf_counter() - started,
        "settings": {k: v for k, v in asdict(settings).items()},
        "agent_config": agent.config.to_dict(),
    }
    write_json_atomic(output / "samples.json", {"before": before["samples"], "after": after["samples"]})
    write_json_atomic(output / "report.json", report)
    plot_curves(
        output / "progress.csv",
        output / "curves.png",
        title=f"{settings.agent.upper()} on {model_name} · reward: {settings.reward}",
        eval_before=before["reward"],
        eval_after=after["reward"],
    )
    return report


def _export_model(agent: Agent, folder: Path) -> None:
    """Save the trained LM (LoRA merged into a copy) with its tokenizer in Hugging Face format."""
    import copy
    import shutil
    import tempfile

    model = agent.policy.model
    if agent.config.lora_rank > 0:
        model = copy.deepcopy(model).merge_and_unload()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".model-", dir=folder.parent))
    model.save_pretrained(staging)
    agent.policy.tokenizer.save_pretrained(staging)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
