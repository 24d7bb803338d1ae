"""Lazy imports of optional reward dependencies, failing with `DependencyNotInstalled` and the exact pip command."""

from __future__ import annotations

import importlib
from types import ModuleType

from gymnasium.error import DependencyNotInstalled

__all__ = ["REWARDS_EXTRA", "require"]

REWARDS_EXTRA = 'pip install "textgen-env[rewards]"'
"""Installs every dependency of the built-in rewards that is listed in the ``rewards`` extra."""


def require(module: str, pip_name: str, *, reward: str, in_extra: bool = True) -> ModuleType:
    """Import and return `module`, or raise `DependencyNotInstalled` naming the reward and the pip command.

    Args:
        module: the dotted module to import, e.g. ``"vaderSentiment.vaderSentiment"``.
        pip_name: the PyPI distribution that provides it, e.g. ``"vaderSentiment"``.
        reward: the reward that needs it, for the message.
        in_extra: whether ``textgen-env[rewards]`` installs it, so the message can offer that too.

    A module that is installed but fails inside its own imports re-raises that error unchanged: telling the user
    to install a package they already have would send them the wrong way.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if not (module == missing or module.startswith(missing + ".")):
            raise
        hint = f"pip install {pip_name}"
        if in_extra:
            hint += f" (or {REWARDS_EXTRA} for every reward dependency)"
        raise DependencyNotInstalled(
            f"The {reward!r} reward needs the package {pip_name!r}, which is not installed. Run: {hint}"
        ) from error
