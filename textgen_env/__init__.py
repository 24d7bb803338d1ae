"""textgen-env: language-model text generation as a Gymnasium environment.

>>> import gymnasium as gym
>>> import textgen_env  # registers TextGen-v0
>>> env = gym.make("TextGen-v0")  # doctest: +SKIP
"""

from gymnasium.envs.registration import register

from textgen_env._version import __version__
from textgen_env.completion import CompletionWrapper, TextCompletionEnv
from textgen_env.config import TextGenConfig
from textgen_env.env import TextGenEnv
from textgen_env.models import DEFAULT_MODEL, load_model, load_tokenizer
from textgen_env.prompts import BUILTIN_PROMPT_SETS, Prompt, PromptSource, make_prompt_source
from textgen_env.vector import TextGenVectorEnv

__all__ = [
    "BUILTIN_PROMPT_SETS",
    "DEFAULT_MODEL",
    "CompletionWrapper",
    "Prompt",
    "PromptSource",
    "TextCompletionEnv",
    "TextGenConfig",
    "TextGenEnv",
    "TextGenVectorEnv",
    "__version__",
    "load_model",
    "load_tokenizer",
    "make_prompt_source",
]

register(
    id="TextGen-v0",
    entry_point="textgen_env.env:TextGenEnv",
    vector_entry_point="textgen_env.vector:TextGenVectorEnv",
)
register(
    id="TextDialogue-v0",
    entry_point="textgen_env.dialogue.env:TextDialogueEnv",
    vector_entry_point="textgen_env.dialogue.env:TextDialogueVectorEnv",
)
register(
    id="TextEdit-v0",
    entry_point="textgen_env.edit.env:TextEditEnv",
    vector_entry_point="textgen_env.edit.vector:TextEditVectorEnv",
)
register(
    id="TextCompletion-v0",
    entry_point="textgen_env.completion:TextCompletionEnv",
)
