"""Feedback from people for learned rewards: the log format, the questions, and the local web app that asks them.

``textgen-env feedback serve --log feedback.jsonl`` runs the page (for the person at this machine only: it prints
a URL with a random token the API requires, see `textgen_env.feedback.guard`); `read_feedback` reads what it wrote,
which is what ``textgen-env reward-model train`` trains a reward model from. The web app needs
``textgen-env[feedback]`` (FastAPI, uvicorn); the log, the questions and the access policy do not.
"""

from textgen_env.feedback.guard import AccessPolicy
from textgen_env.feedback.log import (
    FeedbackLog,
    Rating,
    append_record,
    open_log,
    preference_record,
    rating_record,
    read_feedback,
)
from textgen_env.feedback.questions import (
    Answer,
    InvalidAnswer,
    ModelCompleter,
    Question,
    QuestionBoard,
    UnknownQuestion,
)
from textgen_env.feedback.synthetic import SyntheticUser

__all__ = [
    "AccessPolicy",
    "Answer",
    "FeedbackLog",
    "FeedbackServer",
    "InvalidAnswer",
    "ModelCompleter",
    "Question",
    "QuestionBoard",
    "Rating",
    "SyntheticUser",
    "UnknownQuestion",
    "append_record",
    "create_app",
    "make_board",
    "open_log",
    "preference_record",
    "rating_record",
    "read_feedback",
    "serve",
]


def __getattr__(name: str):  # the web app's modules import FastAPI/uvicorn lazily, on first use
    if name == "create_app":
        from textgen_env.feedback.app import create_app

        return create_app
    if name in ("FeedbackServer", "make_board", "serve"):
        from textgen_env.feedback import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
