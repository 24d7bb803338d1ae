"""Moved to `agents.sb3.edit` (0.2); this name is kept for one release."""

from agents._moved import alias

alias(__name__, "agents.sb3.edit")
