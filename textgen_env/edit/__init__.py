"""TextEdit-v0: revising a draft with edit operations over words, phrases and sentences.

>>> import gymnasium as gym
>>> import textgen_env  # registers TextEdit-v0
>>> env = gym.make("TextEdit-v0")  # doctest: +SKIP
"""

from textgen_env.edit.config import TextEditConfig
from textgen_env.edit.env import TextEditEnv
from textgen_env.edit.operations import OPERATIONS, UNITS, Edit, apply_edit, check_edit
from textgen_env.edit.render import word_diff
from textgen_env.edit.vector import TextEditVectorEnv

__all__ = [
    "OPERATIONS",
    "UNITS",
    "Edit",
    "TextEditConfig",
    "TextEditEnv",
    "TextEditVectorEnv",
    "apply_edit",
    "check_edit",
    "word_diff",
]
