"""Rewards for TextGenEnv: the batched `Reward` protocol, the registry, built-ins and shaping.

Pass any of these as ``TextGenEnv(reward=...)``: a registered name (`available_rewards()`), a callable
``(prompt, completion, done) -> float``, a `Reward`, or a ``{name_or_callable: weight}`` dict. Rubrics compose
them (`Gate`, `Sequential`); `GroupReward` s score a GRPO group together (with a per-completion fallback elsewhere).
"""

from textgen_env.rewards.base import FunctionReward, Reward, WeightedReward, check_scores
from textgen_env.rewards.embedding import EmbeddingSentimentReward, SentenceEncoder, SimilarityReward
from textgen_env.rewards.grammar import GrammaticalityReward, SpellingReward
from textgen_env.rewards.group import DiversityReward, GroupRankReward, GroupReward, group_terms, score_by_group
from textgen_env.rewards.human import (
    HumanFeedbackReward,
    PairwisePreference,
    Preference,
    ReplayReward,
    load_preferences,
    load_ratings,
)
from textgen_env.rewards.judge import JudgeReward
from textgen_env.rewards.lm import ClassifierReward, FluencyReward
from textgen_env.rewards.metrics import BleuReward, ChrfReward, RougeReward
from textgen_env.rewards.quality import ReadabilityReward, ToxicityReward
from textgen_env.rewards.registry import RewardSpec, available_rewards, make_reward, register_reward
from textgen_env.rewards.reward_model import RewardModelReward
from textgen_env.rewards.rubrics import Gate, Sequential
from textgen_env.rewards.sentiment import SentimentReward
from textgen_env.rewards.shaping import RewardShaper
from textgen_env.rewards.text import KeywordReward, LengthReward, RegexReward, RepetitionReward

__all__ = [
    "BleuReward",
    "ChrfReward",
    "ClassifierReward",
    "DiversityReward",
    "EmbeddingSentimentReward",
    "FluencyReward",
    "FunctionReward",
    "Gate",
    "GrammaticalityReward",
    "GroupRankReward",
    "GroupReward",
    "HumanFeedbackReward",
    "JudgeReward",
    "KeywordReward",
    "LengthReward",
    "PairwisePreference",
    "Preference",
    "ReadabilityReward",
    "RegexReward",
    "RepetitionReward",
    "ReplayReward",
    "Reward",
    "RewardModelReward",
    "RewardShaper",
    "RewardSpec",
    "RougeReward",
    "SentenceEncoder",
    "SentimentReward",
    "Sequential",
    "SimilarityReward",
    "SpellingReward",
    "ToxicityReward",
    "WeightedReward",
    "available_rewards",
    "check_scores",
    "group_terms",
    "load_preferences",
    "load_ratings",
    "make_reward",
    "register_reward",
    "score_by_group",
]

register_reward("keyword", KeywordReward)
register_reward("regex", RegexReward)
register_reward("length", LengthReward)
register_reward("repetition", RepetitionReward)
# Built-ins with optional dependencies import them on first use, so these lines never need them installed.
register_reward("sentiment", SentimentReward)
register_reward("sentiment-embedding", EmbeddingSentimentReward)
register_reward("similarity", SimilarityReward)
register_reward("bleu", BleuReward)
register_reward("chrf", ChrfReward)
register_reward("rouge", RougeReward)
register_reward("toxicity", ToxicityReward)
register_reward("readability", ReadabilityReward)
register_reward("fluency", FluencyReward)
register_reward("classifier", ClassifierReward)
register_reward("spelling", SpellingReward)
register_reward("grammaticality", GrammaticalityReward)
register_reward("human", HumanFeedbackReward)
register_reward("human-replay", ReplayReward)
register_reward("reward-model", RewardModelReward)
register_reward("gate", Gate)
register_reward("diversity", DiversityReward)
register_reward("rank", GroupRankReward)
register_reward("judge", JudgeReward)
