"""Token-level double DQN, online through the env: the LM's logits are its Q-values, Q(s, a) = logits(s)[a].

Starting Q from the logits makes the initial Boltzmann policy exactly the LM's sampling distribution (temperature
1), so exploration starts from fluent text. Episodes go into a replay buffer; each gradient step takes whole
episodes, scores them in one forward of the online network (all prefixes of an episode are its states) and one
no-grad forward of the target network, and regresses Q(s_t, a_t) toward
``r_t + gamma * Q_target(s_{t+1}, argmax_a Q_online(s_{t+1}, a))`` (double Q; plain max with ``double_q=False``),
where s_{t+1} is the state of the next action: past any env-inserted tokens (a tool result, which gets no TD loss)
and with the bootstrap dropped after the episode's last action. The target network follows by Polyak averaging.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import deque

import numpy as np
import torch
import torch.nn.functional as F

from agents.base import Agent
from agents.config import DQNConfig
from agents.functional import masked_mean, next_action_values
from agents.rollout import Episode, RolloutBatch

__all__ = ["DQN"]


class DQN(Agent):
    """Value-based learning over tokens; config: `DQNConfig`."""

    config_class = DQNConfig
    config: DQNConfig  # what config_class builds
    name = "dqn"

    def __init__(self, env, config=None, **kwargs) -> None:
        super().__init__(env, config, **kwargs)
        if self.dist.enabled:
            raise ValueError(
                f"Expected DQN to train in one process (its replay buffer is not shared), got world size "
                f"{self.dist.world_size}; use ppo, reinforce or grpo with torchrun"
            )
        self.target_model = copy.deepcopy(self.policy.model).requires_grad_(False).eval()
        self.buffer: deque = deque(maxlen=self.config.buffer_episodes)

    def sample_actions(self, logits: torch.Tensor, temperature: float) -> torch.Tensor:
        """Boltzmann over Q (= logits) at the exploration temperature, uniform with probability epsilon."""
        config = self.config
        actions = super().sample_actions(logits, config.exploration_temperature * temperature)
        explore = torch.rand(actions.shape, generator=self.generator) < config.epsilon
        random_actions = torch.randint(0, logits.shape[1], actions.shape, generator=self.generator)
        return torch.where(explore, random_actions, actions)

    def update(self, rollout: RolloutBatch) -> dict[str, float]:
        config = self.config
        self.buffer.extend(rollout.to_episodes())  # replayed across iterations: kept as plain lists
        if len(self.buffer) < max(config.learning_starts, config.minibatch_size):
            return {"losses/td": 0.0, "train/buffer_episodes": float(len(self.buffer))}
        device = self.policy.device
        replay = RolloutBatch.from_episodes(list(self.buffer), self.policy.tokenizer.pad_token_id)
        losses, q_means = [], []
        for _ in range(config.gradient_steps):
            rows = self.np_random.choice(len(replay), size=config.minibatch_size, replace=False)
            batch = replay.select(rows).to(device)
            mask = batch.completion_mask
            rewards = batch.rewards  # (B, T)
            q_all = self.policy.score(batch).logits  # (B, T, V): Q(s_t, .)
            q_taken = q_all.gather(2, batch.actions[:, :, None]).squeeze(2)  # (B, T)
            with torch.no_grad():
                target_q = self.policy.score(batch, model=self.target_model).logits  # (B, T, V)
                if config.double_q:
                    next_actions = q_all.detach().argmax(dim=2, keepdim=True)  # argmax by the online net
                    next_values = target_q.gather(2, next_actions).squeeze(2)
                else:
                    next_values = target_q.max(dim=2).values
                # Q of the state after action t sits at the next action's column (past a tool result's env
                # tokens); no bootstrap after an episode's last action
                bootstrap = next_action_values(next_values, mask)
                targets = rewards + config.gamma * bootstrap
            loss = masked_mean(F.smooth_l1_loss(q_taken, targets, reduction="none"), mask)
            self.optimizer_step(loss)
            self._polyak_update(config.tau)
            losses.append(loss.item())
            q_means.append(masked_mean(q_taken.detach(), mask).item())
        return {
            "losses/td": float(np.mean(losses)),
            "train/q_mean": float(np.mean(q_means)),
            "train/buffer_episodes": float(len(self.buffer)),
        }

    @torch.no_grad()
    def _polyak_update(self, tau: float) -> None:
        for target, online in zip(self.target_model.parameters(), self.policy.model.parameters()):
            target.mul_(1.0 - tau).add_(online, alpha=tau)

    def extra_state(self) -> dict:
        # plain dicts, not Episode objects: checkpoints load with torch.load(weights_only=True), which builds no class
        buffer = [dataclasses.asdict(episode) for episode in self.buffer]
        return {"target_model": self.target_model.state_dict(), "buffer": buffer}

    def load_extra_state(self, state: dict) -> None:
        if "target_model" in state:
            self.target_model.load_state_dict(state["target_model"])
        episodes = [_replay_episode(item, row) for row, item in enumerate(state.get("buffer", []))]
        self.buffer = deque(episodes, maxlen=self.config.buffer_episodes)


_EPISODE_FIELDS = {f.name for f in dataclasses.fields(Episode)}


def _replay_episode(item: Episode | dict, row: int) -> Episode:
    """A replay episode from its checkpoint form (a dict of its fields; an `Episode` in checkpoints before 0.3)."""
    if isinstance(item, Episode):
        return item
    if not isinstance(item, dict) or set(item) != _EPISODE_FIELDS:
        got = sorted(item) if isinstance(item, dict) else type(item).__name__
        raise ValueError(f"Expected replay episode {row} to have the fields {sorted(_EPISODE_FIELDS)}, got {got}")
    return Episode(**item)
