"""Rewards for TextGenEnv: the batched `Reward` protocol, the registry, built-ins and shaping.

Pass any of these as ``TextGenEnv(reward=...)``: a registered name (`available_rewards()`), a callable
``(prompt, completion, done) -> float``, a `Reward`, or a ``{name_or_callable: weight}`` dict.
"""

from textgen_env.rewards.base import FunctionReward, Reward, WeightedReward, check_scores
from textgen_env.rewards.registry import RewardSpec, available_rewards, make_reward, register_reward
from textgen_env.rewards.shaping import RewardShaper
from textgen_env.rewards.text import KeywordReward, LengthReward, RegexReward, RepetitionReward

__all__ = [
    "FunctionReward",
    "KeywordReward",
    "LengthReward",
    "RegexReward",
    "RepetitionReward",
    "Reward",
    "RewardShaper",
    "RewardSpec",
    "WeightedReward",
    "available_rewards",
    "check_scores",
    "make_reward",
    "register_reward",
]

register_reward("keyword", KeywordReward)
register_reward("regex", RegexReward)
register_reward("length", LengthReward)
register_reward("repetition", RepetitionReward)
