"""Learning side of textgen-env: LM policies and RL agents that train them through the env loop.

>>> from agents import AGENTS
>>> sorted(AGENTS)
['dqn', 'grpo', 'ppo', 'reinforce']
"""

from agents.base import Agent, Callback
from agents.config import AgentConfig, DQNConfig, GRPOConfig, PPOConfig, REINFORCEConfig
from agents.dqn import DQN
from agents.edit import EditPPO, EditReinforce
from agents.grpo import GRPO
from agents.policy import LMPolicy
from agents.ppo import PPO
from agents.reinforce import REINFORCE
from agents.rollout import Episode, Rollout, RolloutBatch

__all__ = [
    "AGENTS",
    "DQN",
    "EDIT_AGENTS",
    "GRPO",
    "PPO",
    "REINFORCE",
    "Agent",
    "AgentConfig",
    "Callback",
    "DQNConfig",
    "EditPPO",
    "EditReinforce",
    "Episode",
    "GRPOConfig",
    "LMPolicy",
    "PPOConfig",
    "REINFORCEConfig",
    "Rollout",
    "RolloutBatch",
    "agent_class",
    "make_agent",
]

AGENTS: dict[str, type[Agent]] = {"reinforce": REINFORCE, "dqn": DQN, "ppo": PPO, "grpo": GRPO}
"""Agent classes of TextGen-v0 and TextDialogue-v0 by the name the ``textgen-env train --agent`` option takes."""

EDIT_AGENTS: dict[str, type[Agent]] = {"reinforce": EditReinforce, "ppo": EditPPO}
"""Agent classes of TextEdit-v0 by the name ``textgen-env train --env edit --agent`` takes."""


def agent_class(name: str, env: str = "textgen") -> type[Agent]:
    """The agent class registered under `name` (case-insensitive) for `env` (textgen, dialogue or edit)."""
    registry = EDIT_AGENTS if env == "edit" else AGENTS
    key = name.lower()
    if key not in registry:
        where = " with env 'edit'" if env == "edit" else ""
        raise ValueError(f"Expected agent to be one of {sorted(registry)}{where}, got {name!r}")
    return registry[key]


def make_agent(name: str, env, **kwargs) -> Agent:
    """Build the agent registered under `name` on `env`; keyword arguments are config fields or Agent arguments."""
    return agent_class(name)(env, **kwargs)
