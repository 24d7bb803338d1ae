"""`DialogueConfig`: the conversation settings of TextDialogue-v0 (the reply settings are TextGenConfig's)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, cast

from textgen_env.config import TextGenConfig
from textgen_env.config_docs import argument_table
from textgen_env.dialogue.scenarios import Scenario, resolve_scenarios
from textgen_env.dialogue.users import RuleBasedUser, SimulatedUser, User
from textgen_env.validation import check_choice, check_int, check_positive

__all__ = ["REPLY_ARGUMENTS", "USER_KINDS", "DialogueConfig", "dialogue_arguments_table", "make_user"]

USER_KINDS = ("rule", "simulated", "task")
"""Names a ``user=`` argument may take (or give a `User` instance or a factory returning one); ``"task"`` (a
`TaskUser`, chosen by itself when ``task=`` is given) needs ``task=``."""
REPLY_ARGUMENTS = {
    "max_new_tokens": "max_reply_tokens",
    "max_prompt_tokens": "max_context_tokens",
    "prompts": "scenarios",
}
"""The `TextGenConfig` arguments that TextDialogue-v0 does not take -> its own argument that sets them."""


@dataclass(frozen=True)
class DialogueConfig:
    """The conversation settings (every other TextDialogueEnv argument is a `TextGenConfig` one)."""

    scenarios: str | Scenario | Sequence[str | Scenario] = "train"
    """Scenario name, set (``train``, ``eval``, ``all``), `Scenario`, or a list; each episode draws one."""
    user: str | User | Callable[[], User] = "rule"
    """``"rule"`` (`RuleBasedUser`), ``"simulated"`` (`SimulatedUser` on the env's LM), a `User` or a factory; with
    ``task=`` a `TaskUser` asks the task's items, checks every reply and says "That is not right. Try again." until
    one is right (its rating, 1 or 0, is the feedback; ``scenarios`` is then unused)."""
    max_turns: int = 3
    """Assistant replies per conversation at most (>= 1)."""
    max_reply_tokens: int = 24
    """Tokens of one reply at most (>= 2)."""
    max_context_tokens: int = 192
    """Longest conversation text in tokens (>= 8); the oldest turns are dropped to fit (never a system message or
    the last message)."""
    feedback_weight: float = 0.0
    """Weight w (>= 0) of the user's rating of each reply, paid on the reply's last token (see ``feedback_mode``).
    0 by default: a sum of ratings pays stalling (three replies rated 0.33 return 1.0, one rated 0.67 that satisfies
    the user returns 0.67), while the evaluation reports the mean rating per conversation."""
    final_weight: float = 1.0
    """Weight (>= 0) of the conversation's mean rating, paid at its last step. The default return (this weight 1,
    ``feedback_weight`` 0) is the mean rating per conversation, the quantity the evaluation reports; satisfying the
    user sooner never returns less than stalling with lower-rated replies first."""
    chat_template: bool = True
    """Render the conversation with the tokenizer's chat template when it has one."""
    feedback_mode: Literal["sparse", "dense"] = "sparse"
    """``"sparse"``: the rating on the reply's last token; ``"dense"``: potential-based shaping by the user's rating
    of the reply so far (``User.rate``), r_t = w * (rate(reply_t) - rate(reply_{t-1})), the last token getting the
    rest up to the actual rating, so a reply's rewards still sum to w * rating."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "scenarios", resolve_scenarios(self.scenarios))
        for name, minimum in (("max_turns", 1), ("max_reply_tokens", 2), ("max_context_tokens", 8)):
            check_int(name, getattr(self, name), minimum)
        check_positive("feedback_weight", self.feedback_weight, allow_zero=True)
        check_positive("final_weight", self.final_weight, allow_zero=True)
        check_choice("feedback_mode", self.feedback_mode, ("sparse", "dense"))
        if not isinstance(self.chat_template, bool):
            raise ValueError(f"Expected chat_template to be a bool, got {self.chat_template!r}")
        if isinstance(self.user, str) and self.user not in USER_KINDS:
            raise ValueError(f"Expected user to be one of {list(USER_KINDS)}, a User or a factory, got {self.user!r}")
        if not isinstance(self.user, (str, User)) and not callable(self.user):
            raise ValueError(f"Expected user to be one of {list(USER_KINDS)}, a User or a factory, got {self.user!r}")


def dialogue_arguments_table() -> str:
    """TextDialogue-v0's arguments as a Markdown table: `DialogueConfig`'s fields, then the TextGen-v0 ones it takes."""
    shared = ", ".join(f"``{f.name}``" for f in dataclasses.fields(TextGenConfig) if f.name not in REPLY_ARGUMENTS)
    meaning = (
        f"TextGen-v0's arguments, applied to every reply: {shared}. Here ``reward`` defaults to none (the user's "
        "ratings are the whole reward) and ``render_mode`` is ``'human'`` or ``'ansi'``."
    )
    return argument_table(DialogueConfig, extra_rows=[("the others", "TextGen-v0's", meaning)])


def make_user(spec: str | User | Callable[[], User], slot: int) -> User:
    """A fresh `User` for one slot: a named kind, a copy of a given instance (slot 0 gets it), or a factory's."""
    if spec == "rule":
        return RuleBasedUser()
    if spec == "simulated":
        return SimulatedUser()
    if isinstance(spec, User):
        return spec if slot == 0 else copy.deepcopy(spec)
    user = cast(Callable[[], User], spec)()  # __post_init__ allowed only the names above besides these
    if not isinstance(user, User):
        raise TypeError(f"Expected the user factory to return a User, got {type(user).__name__}")
    return user
