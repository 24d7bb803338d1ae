"""TextDialogue-v0: conversations where the user's replies and ratings are part of the state."""

from textgen_env.dialogue.config import DialogueConfig
from textgen_env.dialogue.env import ConversationState, TextDialogueEnv, TextDialogueVectorEnv
from textgen_env.dialogue.scenarios import SCENARIO_SETS, SCENARIOS, Scenario
from textgen_env.dialogue.users import HumanUser, RuleBasedUser, SimulatedUser, User, UserTurn

__all__ = [
    "SCENARIOS",
    "SCENARIO_SETS",
    "ConversationState",
    "DialogueConfig",
    "HumanUser",
    "RuleBasedUser",
    "Scenario",
    "SimulatedUser",
    "TextDialogueEnv",
    "TextDialogueVectorEnv",
    "User",
    "UserTurn",
]
