"""`Agent`: the shared learning loop: rollouts over the vector env, learn/predict, atomic checkpoints and resume.

A new algorithm subclasses `Agent`, sets ``config_class`` and writes `update(rollout) -> stats` (and, if it needs
one, ``uses_value_head = True``). Everything else (sampling with the KV cache, the env loop, seeding, the optimizer,
saving and resuming) lives here.
"""

from __future__ import annotations

import abc
import copy
import json
import math
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
import torch
from gymnasium.spaces import Discrete
from transformers import PreTrainedModel

from agents.checkpoint import read_checkpoint
from agents.config import AgentConfig
from agents.distributed import SINGLE_PROCESS, DistributedContext
from agents.episode_loop import run_episodes
from agents.functional import kl_penalized_rewards, last_action_columns, masked_sum
from agents.kl_control import AdaptiveKLController, FixedKLController
from agents.policy import KeptMinibatch, LMPolicy
from agents.rollout import Episode, Rollout, RolloutBatch, later_replies_total
from agents.sampling import sample_tokens
from textgen_env import TextGenEnv, TextGenVectorEnv, load_model
from textgen_env.storage import atomic_folder

if TYPE_CHECKING:
    from textgen_env.dialogue import TextDialogueVectorEnv

__all__ = ["Agent", "Callback", "Episode", "Rollout", "RolloutBatch"]

RANK_SEED_STRIDE = 1_000_000_007
"""Offset of each rank's seeds (env resets, sampling, minibatch order) from the previous rank's."""

Callback = Callable[["Agent", dict[str, float]], "bool | None"]
"""Called after every iteration with the agent and that iteration's stats; returning False stops training."""


class Agent(abc.ABC):
    """Base class: owns the LM policy, its optimizer and the loop that trains it through a `TextGenVectorEnv`.

    Args:
        env: a `TextGenVectorEnv` (``gym.make_vec("TextGen-v0", num_envs=N)``) or a `TextGenEnv`, in token
            observation and vocab action modes.
        config: the algorithm's config (its ``config_class``); keyword overrides are applied on top.
        model: the trainable LM (instance, name or path); defaults to a fresh load of the env's model.
        reference: a frozen reference model for the KL penalty; defaults to the env's model when the env has it
            loaded (no extra copy), else one frozen copy (or the LoRA base).
    """

    config_class: ClassVar[type[AgentConfig]] = AgentConfig
    uses_value_head: ClassVar[bool] = False
    uses_reference: ClassVar[bool] = True
    """Whether the agent keeps a frozen reference model for its KL term (an agent without a KL term saves it)."""
    name: ClassVar[str] = "agent"

    def __init__(
        self,
        env: Any,
        config: AgentConfig | None = None,
        *,
        model: PreTrainedModel | str | None = None,
        reference: PreTrainedModel | None = None,
        distributed: DistributedContext | None = None,
        **overrides: Any,
    ) -> None:
        self.dist = distributed or SINGLE_PROCESS
        config = config or self.config_class()
        if not isinstance(config, self.config_class):
            raise TypeError(f"Expected config to be a {self.config_class.__name__}, got {type(config).__name__}")
        if overrides:
            config = self.config_class.from_dict({**config.to_dict(), **overrides})
        self.config = config
        self.env: TextGenVectorEnv | TextDialogueVectorEnv = self.coerce_env(env)  # (the edit agents': theirs)
        env_config = self.env.config
        tokenizer = self.env.tokenizer
        if model is None or isinstance(model, (str, os.PathLike)):
            source = env_config.model if model is None else model
            if isinstance(source, PreTrainedModel):  # never train the env's own instance: take a copy
                model = copy.deepcopy(source)
            else:
                model, _ = load_model(source, tokenizer=tokenizer, device=getattr(env_config, "device", "cpu"))
        self.check_model(model)
        env_kl = float(getattr(env_config, "kl_coef", 0.0) or 0.0)
        if env_kl > 0 and (config.kl_coef > 0 or config.kl_target is not None):
            raise ValueError(
                f"Expected an env built with kl_coef=0 under an agent with its own KL penalty (kl_coef "
                f"{config.kl_coef}, kl_target {config.kl_target}), got the env's kl_coef={env_kl}: the two penalties "
                "would stack; keep one (the agent's kl_coef=0 and kl_target=None, or the env's kl_coef=0)"
            )
        if reference is None and config.lora_rank == 0 and self.uses_reference:
            # the env's frozen model is the natural reference (no extra copy); else a copy taken now, before any
            # update or checkpoint load, so that it stays the initial policy
            env_model = self.env.loaded_model
            reference = env_model if env_model is not None and env_model is not model else copy.deepcopy(model)
        torch.manual_seed(config.seed)
        self.policy = LMPolicy(
            model,
            tokenizer,
            value_head=self.uses_value_head,
            lora_rank=config.lora_rank,
            reference=reference,
            bf16_autocast=config.bf16_autocast,
        )
        self.optimizer = adamw(self._parameter_groups(), weight_decay=config.weight_decay)
        self.kl_controller: AdaptiveKLController | FixedKLController = (
            AdaptiveKLController(config.kl_coef, config.kl_target, config.kl_horizon, config.kl_coef_min)
            if config.kl_target is not None and config.kl_coef > 0
            else FixedKLController(config.kl_coef)
        )
        self.dist.broadcast_tensors(self.policy.trainable_parameters())  # every rank starts from rank 0's weights
        rank_seed = config.seed + RANK_SEED_STRIDE * self.dist.rank  # rank 0 keeps the single-process streams
        self.generator = torch.Generator().manual_seed(rank_seed)
        self.np_random = np.random.default_rng(rank_seed)
        self.episodes_per_rank = self.dist.share(config.episodes_per_iteration, "episodes_per_iteration")
        self.minibatch_per_rank = self.dist.share(config.minibatch_size, "minibatch_size")
        self.iteration = 0
        self.num_timesteps = 0
        self.history: list[dict[str, float]] = []
        self.last_rollout: RolloutBatch | None = None
        """The latest iteration's rollout, after its update (for callbacks such as the reward-hacking monitors)."""

    def _parameter_groups(self) -> list[dict[str, Any]]:
        """The LM's trainable weights at ``learning_rate``; the value head (if any) at ``value_learning_rate``."""
        head = [] if self.policy.value_head is None else list(self.policy.value_head.parameters())
        head_ids = {id(p) for p in head}
        lm = [p for p in self.policy.trainable_parameters() if id(p) not in head_ids]
        groups: list[dict[str, Any]] = [{"params": lm, "lr": self.config.learning_rate}]
        if head:
            rate = self.config.value_learning_rate or self.config.learning_rate
            groups.append({"params": head, "lr": rate})
        return groups

    # ------------------------------------------------------------------------------------------------ interface
    @classmethod
    def coerce_env(cls, env: Any) -> Any:
        """The vector env the agent trains on, from what the caller gave (checked); overridden by agents of
        other envs."""
        return _as_vector_env(env)

    def check_model(self, model: PreTrainedModel) -> None:
        """Raise when `model` cannot be the policy of this agent's env (its vocabulary against the action space)."""
        tokenizer = self.env.tokenizer
        rows = cast(int, model.get_input_embeddings().num_embeddings)  # an nn.Embedding's row count
        n_actions = int(cast(Discrete, self.env.single_action_space).n)  # action_mode='vocab', checked above
        if n_actions != len(tokenizer) or rows < n_actions:
            raise ValueError(
                f"Expected an env whose action space matches the policy's vocabulary ({len(tokenizer)} tokens, "
                f"model with {rows} rows), got Discrete({n_actions}); use action_mode='vocab' and the model's tokenizer"
            )

    @abc.abstractmethod
    def update(self, rollout: RolloutBatch) -> dict[str, float]:
        """One learning step on a rollout; returns stats (namespaced keys, e.g. ``losses/policy``)."""

    def needs_kl(self) -> bool:
        """Whether this iteration measures the KL to the reference (a penalty is on, or a target steers it)."""
        return self.kl_controller.value > 0 or self.config.kl_target is not None

    def rewards_with_kl_penalty(
        self, rollout: RolloutBatch, keep_rows: np.ndarray | None = None
    ) -> tuple[torch.Tensor, KeptMinibatch | None]:
        """(N, T) the env's rewards minus ``kl_coef * (log pi - log ref)`` of each chosen token (the sampled k1
        term, whose policy gradient is that of -kl_coef * KL(pi || ref)); in a conversation a reply's last token
        also carries its later replies' penalty. The env's rewards when `needs_kl` is False. Fills the rollout's
        reference terms (`LMPolicy.score_reference`) on the way, and returns the forward of `keep_rows` (the
        update's first minibatch) for the first step, or None when no KL pass ran."""
        if not self.needs_kl():
            return rollout.rewards, None
        config = self.config
        kept = self.policy.score_reference(
            rollout, temperature=config.temperature, chunk_size=config.minibatch_size, keep_rows=keep_rows
        )
        assert rollout.reference_logprobs is not None  # set just above
        rewards = kl_penalized_rewards(
            rollout.rewards,
            rollout.logprobs,
            rollout.reference_logprobs,
            rollout.completion_mask,
            self.kl_controller.value,
        )
        if bool((rollout.turns > 0).any()):  # conversations: a reply is charged its later replies' KL, as it is
            # paid their rewards (`_collect_round`), on its last token
            penalty = masked_sum(rewards - rollout.rewards, rollout.completion_mask, dim=1)  # (N,)
            later = later_replies_total(penalty, rollout.slots, rollout.turns)
            last = last_action_columns(rollout.completion_mask)  # (N,)
            rows = torch.arange(len(rollout))
            rewards = rewards.clone()
            rewards[rows, last] += later.to(rewards.dtype)
        return rewards, kept

    def reset_seeds(self, round_index: int) -> list[int]:
        """Per-slot env seeds for one collection round (a function of the run's seed and progress only)."""
        base = self.config.seed * 1_000_003 + (self.iteration * 1_000 + round_index) * self.env.num_envs
        base += RANK_SEED_STRIDE * self.dist.rank  # each rank its own prompts; rank 0 as in one process
        return [base + i for i in range(self.env.num_envs)]

    # ------------------------------------------------------------------------------------------------ rollouts
    def collect(self, num_episodes: int | None = None, *, temperature: float | None = None) -> RolloutBatch:
        """Run the env until `num_episodes` episodes (rounded up to whole rounds of num_envs) have finished; they
        come back padded once, as the `RolloutBatch` that the update reads."""
        num_episodes = num_episodes or self.episodes_per_rank
        temperature = self.config.temperature if temperature is None else temperature
        episodes: list[Episode] = []
        round_index = 0
        while len(episodes) < num_episodes:
            episodes.extend(self._collect_round(self.reset_seeds(round_index), temperature))
            round_index += 1
        return RolloutBatch.from_episodes(episodes, self.policy.tokenizer.pad_token_id)

    def collect_for_update(self) -> RolloutBatch:
        """The rollout `learn` trains on: `collect` with the defaults (an algorithm may select from what it collects,
        as GRPO's zero-variance filtering does; `collect` itself never drops an episode, so measurements use it)."""
        return self.collect()

    def sample_actions(self, logits: torch.Tensor, temperature: float) -> torch.Tensor:
        """(B,) actions from (B, V) policy logits (overridden by value-based agents)."""
        return sample_tokens(logits, temperature=temperature, generator=self.generator)

    def _collect_round(
        self, seeds: list[int], temperature: float, options: dict[str, Any] | None = None
    ) -> list[Episode]:
        """One round of `run_episodes` on the agent's env (one episode per slot, one per reply in a conversation),
        sampling with the agent's `sample_actions`; counts the actions into ``num_timesteps``."""
        finished = run_episodes(
            self.env, self.policy, seeds, lambda logits: self.sample_actions(logits, temperature), temperature, options
        )
        self.num_timesteps += sum(e.num_actions for e in finished)
        return finished

    # ------------------------------------------------------------------------------------------------- learning
    def learn(
        self,
        total_timesteps: int,
        callback: Callback | None = None,
        *,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
    ) -> Agent:
        """Train until `num_timesteps` (generated tokens) reaches `total_timesteps`.

        With `checkpoint_dir`, a checkpoint is written atomically every `checkpoint_every` iterations and at the
        end; `Agent.load` on it continues exactly where the run stopped.
        """
        if isinstance(total_timesteps, bool) or not isinstance(total_timesteps, int) or total_timesteps < 1:
            raise ValueError(f"Expected total_timesteps to be an int >= 1, got {total_timesteps!r}")
        while self.num_timesteps < total_timesteps:
            done_before = self.num_timesteps
            rollout = self.collect_for_update()  # counts this rank's tokens; the budget counts every rank's
            self.num_timesteps = done_before + int(self.dist.sum([self.num_timesteps - done_before])[0])
            stats = self.update(rollout)
            self.last_rollout = rollout
            bad = [k for k, v in stats.items() if not math.isfinite(v)]
            if bad:
                where = f"; the last good checkpoint is in {checkpoint_dir}" if checkpoint_dir else ""
                raise FloatingPointError(
                    f"Training stopped at iteration {self.iteration}: {', '.join(bad)} became NaN or inf{where}. "
                    "Lower learning_rate or raise kl_coef."
                )
            self.iteration += 1
            scores, tokens, count = self.dist.sum(
                [float(rollout.scores.sum()), rollout.num_tokens, len(rollout)]
            ).tolist()
            stats.update(
                {
                    "iteration": float(self.iteration),
                    "timesteps": float(self.num_timesteps),  # over all ranks
                    "rollout/reward_mean": scores / count,
                    "rollout/completion_tokens": tokens / count,
                    "train/kl_coef": float(self.kl_controller.value),
                }
            )
            if isinstance(self.env, TextGenVectorEnv):
                stats.update(self.env.task_log())  # task/difficulty: the level a task env draws at (curriculum)
            self.history.append(stats)
            if checkpoint_dir is not None and self.iteration % checkpoint_every == 0:
                self.save(checkpoint_dir)
            stop = callback is not None and callback(self, stats) is False
            if self.dist.sum([float(stop)])[0] > 0:  # every rank stops together, or the others would wait forever
                break
        if checkpoint_dir is not None:
            self.save(checkpoint_dir)
        return self

    def optimizer_step(self, loss: torch.Tensor | None, weight: float | torch.Tensor = 1.0) -> float:
        """Backward, average the gradients over the ranks, clip, step; returns the gradient norm before clipping.

        `weight` is the number of terms `loss` averages (the minibatch's tokens): across ranks, each rank's
        gradient counts in proportion to it, so the step is the single-process step on the ranks' union. A `loss`
        of None is an empty minibatch (see `minibatches`): this rank adds no gradient (weight 0) to the others'.
        """
        if loss is not None and not torch.isfinite(loss):
            raise FloatingPointError(f"Training stopped at iteration {self.iteration}: the loss became {loss.item()}")
        self.optimizer.zero_grad(set_to_none=True)
        if loss is None:
            weight = 0.0
        else:
            loss.backward()
        self.dist.average_gradients(self.policy.trainable_parameters(), float(weight))
        norm = torch.nn.utils.clip_grad_norm_(self.policy.trainable_parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        return float(norm)

    def minibatches(self, size: int) -> list[np.ndarray]:
        """Shuffled index minibatches over `size` episodes, from the agent's seeded generator.

        Every rank gets as many as the rank with the most (in conversations the ranks collect different numbers of
        replies): the missing ones are empty, and an update takes part in the others' step with
        ``optimizer_step(None)``, so that every rank runs the same collectives.
        """
        order = self.np_random.permutation(size)
        step = self.minibatch_per_rank
        chunks = [order[i : i + step] for i in range(0, size, step)]
        count = self.dist.maximum(len(chunks))
        return chunks + [order[:0]] * (count - len(chunks))

    def epoch_minibatches(self, size: int) -> list[list[np.ndarray]]:
        """`minibatches` of every epoch of one update, drawn up front (the same draws, in the same order), so that
        the KL pass can score the first one for the first step (`LMPolicy.score_reference`'s ``keep_rows``)."""
        return [self.minibatches(size) for _ in range(self.config.epochs)]

    def predict(self, observation: Any, deterministic: bool = False) -> tuple[np.ndarray, None]:
        """Actions for token observations (SB3-style: returns ``(actions, None)``)."""
        actions = self.policy.act(observation, deterministic=deterministic, generator=self.generator).cpu().numpy()
        single = np.asarray(observation["input_ids"]).ndim == 1
        return (actions[0] if single else actions), None

    # ------------------------------------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        return {
            "algorithm": self.name,
            "config": self.config.to_dict(),
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "kl_controller": self.kl_controller.state_dict(),
            **self._random_state(),
            "iteration": self.iteration,
            "num_timesteps": self.num_timesteps,
            "history": self.history,
            "extra": self.extra_state(),
        }

    def extra_state(self) -> dict[str, Any]:
        """Algorithm-specific state to checkpoint (e.g. a running baseline)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027  (optional hook, empty by default)
        """Restore what `extra_state` returned."""

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a checkpoint folder atomically (`textgen_env.storage.atomic_folder`): a kill at any moment leaves
        the previous checkpoint or this one, which `load` finds."""
        target = Path(path)
        rank_states = self.dist.gather_objects(self._random_state())  # a collective: every rank takes part
        if not self.dist.is_main:
            return target
        state = {**self.state(), "world_size": self.dist.world_size, "ranks": rank_states}
        meta = {"algorithm": self.name, "iteration": self.iteration, "num_timesteps": self.num_timesteps}
        with atomic_folder(target, name="checkpoint") as staging:
            torch.save(state, staging / "agent.pt")
            (staging / "meta.json").write_text(json.dumps(meta))
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str], env: Any, **kwargs: Any) -> Agent:
        """Rebuild an agent from a checkpoint folder written by `save` and continue where it stopped.

        A folder left mid-swap by a kill is recovered first (`textgen_env.storage.recover_folder`); a truncated or
        corrupt ``agent.pt`` is reported by name, and the retired copy is used when it is intact.
        """
        state = read_checkpoint(path, cls.config_class)
        if state.get("algorithm") != cls.name and cls.name != "agent":
            raise ValueError(f"Expected a {cls.name} checkpoint, got one written by {state.get('algorithm')!r}")
        agent = cls(env, cls.config_class.from_dict(state["config"], strict=False), **kwargs)
        agent.load_state(state)
        return agent

    def _random_state(self) -> dict[str, Any]:
        """This rank's random generators (the part of a checkpoint that differs between ranks)."""
        return {
            "generator": self.generator.get_state(),
            "np_random": self.np_random.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        world_size = state.get("world_size", 1)
        if world_size != self.dist.world_size:
            raise ValueError(
                f"Expected to resume with the checkpoint's world size {world_size} (its ranks' random states and "
                f"episode shares depend on it), got world size {self.dist.world_size}"
            )
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.kl_controller.load_state_dict(state["kl_controller"])
        randomness = state["ranks"][self.dist.rank] if "ranks" in state else state
        self.generator.set_state(randomness["generator"])
        self.np_random.bit_generator.state = randomness["np_random"]
        torch.set_rng_state(randomness["torch_rng"])
        random.setstate(randomness["python_rng"])
        self.iteration = state["iteration"]
        self.num_timesteps = state["num_timesteps"]
        self.history = list(state["history"])
        self.load_extra_state(state.get("extra", {}))


def adamw(groups: list[dict[str, Any]], weight_decay: float) -> torch.optim.AdamW:
    """AdamW over `groups`, fused (one kernel over all weights) where torch has it for their device: on a CPU that
    step takes a quarter of the for-loop step's time (0.10 s against 0.43 s for SmolLM2-135M here,
    ``benchmarks/agent_throughput.py``), a fifth of a PPO update's cost."""
    devices = {p.device.type for group in groups for p in group["params"]}
    fused = devices <= {"cpu", "cuda"} and all(p.is_floating_point() for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, weight_decay=weight_decay, fused=True if fused else None)


def _as_vector_env(env: Any) -> TextGenVectorEnv | TextDialogueVectorEnv:
    inner = getattr(env, "unwrapped", env)
    if isinstance(inner, TextGenEnv):  # a single env: run its settings as a one-slot vector env
        from dataclasses import fields

        settings = {f.name: getattr(inner.config, f.name) for f in fields(inner.config)}  # no deep copies
        settings["tokenizer"] = inner.tokenizer
        inner = TextGenVectorEnv(num_envs=1, **settings)
    from textgen_env.dialogue import TextDialogueEnv, TextDialogueVectorEnv

    if isinstance(inner, TextDialogueEnv):
        raise TypeError("Expected gym.make_vec('TextDialogue-v0', num_envs=N) for an agent, got a TextDialogueEnv")
    if not isinstance(inner, (TextGenVectorEnv, TextDialogueVectorEnv)):
        raise TypeError(f"Expected a TextGenVectorEnv or TextGenEnv, got {type(env).__name__}")
    if inner.config.observation_mode != "tokens" or inner.config.action_mode != "vocab":
        raise ValueError(
            "Expected an env with observation_mode='tokens' and action_mode='vocab' for an LM-policy agent, got "
            f"observation_mode={inner.config.observation_mode!r}, action_mode={inner.config.action_mode!r}"
        )
    return inner
