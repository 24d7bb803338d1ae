"""Moved to `agents.evaluation.dialogue` (0.2); this name is kept for one release."""

from agents._moved import alias

alias(__name__, "agents.evaluation.dialogue")
