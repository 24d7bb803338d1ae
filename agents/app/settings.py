"""What ``textgen-env train`` accepts: `TrainSettings` (one field per flag, its docstring the flag's help), the main
job's agent options and the envs it trains on."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from agents import agent_class
from agents.app.run_folder import check_model_not_replaced, check_output_location
from agents.app.task_job import TASK_JOB_OPTIONS, TOOL_PROMPT_TOKENS, apply_task_defaults, tool_names
from textgen_env.validation import check_positive as _positive

__all__ = ["ENVS", "MAIN_JOB_OPTIONS", "TOOL_PROMPT_TOKENS", "TrainSettings", "main_job_options"]

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
    """With task and the calculator: before RL, fine-tune the model on this many scripted demonstrations (train items:
    a calculator call on the item's expression, the env's result, the reference answer; `agents.warmup`); the warmed
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
        if self.warmup_demos and "calculator" not in (self.tools or "").split(","):
            raise ValueError(
                "Expected warmup_demos only with the calculator among the tools (--tools calculator; the "
                f"demonstrations call it), got warmup_demos={self.warmup_demos} with tools={self.tools!r}"
            )
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
        return tool_names(self.tools)

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
