"""Which errors are the user's to fix, and how the ``textgen-env`` command reports them: one line, exit code 2.

The package's own checks raise ``ValueError``/``TypeError`` (and ``OSError``/``RuntimeError`` for files, disks and
locks) whose message starts with "Expected" and says what was found and what to do; those, gymnasium's errors
(``DependencyNotInstalled``, ...), a training run that diverged (``FloatingPointError``) and a full, read-only or
forbidden disk are shown as ``textgen-env: error: <message>``. Anything else is a bug and keeps its traceback, as
does every error under ``--debug`` or ``TEXTGEN_ENV_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import errno
import os

import gymnasium

__all__ = ["DEBUG_VARIABLE", "EXIT_USER_ERROR", "add_debug_flag", "debug_requested", "is_user_error", "user_message"]

DEBUG_VARIABLE = "TEXTGEN_ENV_DEBUG"
EXIT_USER_ERROR = 2
"""The exit status of a refused command (argparse's own for bad arguments)."""
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DEBUG_HELP = f"show the full traceback of an error (also {DEBUG_VARIABLE}=1)"


def _text(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:  # OSError(errno, text): str() would prefix "[Errno N]"
        where = f": {error.filename!r}" if error.filename else ""
        return f"{error.strerror}{where}"
    return str(error)


def is_user_error(error: BaseException) -> bool:
    """Whether `error` is a refusal the user can act on (see the module docstring) rather than a bug."""
    if isinstance(error, gymnasium.error.Error | FloatingPointError):
        return True
    if isinstance(error, OSError) and error.errno in _ENVIRONMENT_ERRNOS:
        return True
    checked = (ValueError, TypeError, OSError, RuntimeError)
    return isinstance(error, checked) and _text(error).lstrip().startswith("Expected")


def user_message(error: BaseException) -> str:
    """The one line shown for a user error: its message with line breaks and runs of spaces folded."""
    return " ".join(_text(error).split()) or type(error).__name__


def debug_requested(args: argparse.Namespace) -> bool:
    """``--debug`` given, or ``TEXTGEN_ENV_DEBUG`` set to anything but empty, 0 or false."""
    variable = os.environ.get(DEBUG_VARIABLE, "").strip().lower()
    return bool(getattr(args, "debug", False)) or variable not in ("", "0", "false", "no")


def add_debug_flag(parser: argparse.ArgumentParser, *, top_level: bool = False) -> None:
    """``--debug`` on `parser`; on a subcommand it leaves the top-level value alone unless given there."""
    default = False if top_level else argparse.SUPPRESS
    parser.add_argument("--debug", action="store_true", default=default, help=_DEBUG_HELP)
