"""Lazy imports of the adapters' optional dependencies, failing with `DependencyNotInstalled` and the pip command."""

from __future__ import annotations

import importlib
from types import ModuleType

from gymnasium.error import DependencyNotInstalled

__all__ = ["INTEROP_EXTRA", "missing_dependency", "require"]

INTEROP_EXTRA = 'pip install "textgen-env[interop]"'
"""Installs trl, datasets and openenv-core at the versions the adapters are tested with."""


def require(module: str, pip_name: str, *, feature: str) -> ModuleType:
    """Import and return `module`, or raise `DependencyNotInstalled` naming `feature` and the exact pip command.

    A module that is installed but fails inside its own imports re-raises that error unchanged.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise missing_dependency(error, module, pip_name, feature=feature) from error


def missing_dependency(error: ModuleNotFoundError, module: str, pip_name: str, *, feature: str) -> Exception:
    """The error to raise for `error`, met importing `module`: `DependencyNotInstalled` with the pip command when
    `module` itself (or its package) is missing, else `error` itself (a broken installed package)."""
    missing = error.name or ""
    if not (module == missing or module.startswith(missing + ".")):
        return error
    return DependencyNotInstalled(
        f"{feature} needs the package {pip_name!r}, which is not installed. Run: pip install {pip_name} "
        f"(or {INTEROP_EXTRA} for every adapter's dependencies)"
    )
