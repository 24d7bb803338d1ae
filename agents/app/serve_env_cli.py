"""``textgen-env serve-env``: serve TextGen-v0, TextCompletion-v0 or TextDialogue-v0 to OpenEnv clients (argument
parsing only; the server is `textgen_env.integrations.openenv_server`). The env flags are the env configs' fields."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

__all__ = ["add_serve_env_command", "env_flag_names"]

_NOT_FLAGS = ("tokenizer", "reward_kwargs", "render_mode")
"""Env arguments the command line cannot give as one value (``--reward-kwargs`` takes JSON instead)."""
_SERVED = ("TextGen-v0", "TextCompletion-v0", "TextDialogue-v0")  # = openenv.SERVED_ENVS (optional dependency)


def _scalar_options(cls: type, exclude: tuple[str, ...] = ()) -> list[Any]:
    """`cls`'s fields as flags of their scalar type (int, float, bool, else str), help from the field docstrings.

    `field_options` resolves full type hints, which TextGenConfig's prompt spec (a forward reference) does not
    allow; an env argument is a scalar on the command line anyway, and the config validates it.
    """
    from agents.app.options import OptionField, field_docs

    docs = field_docs(cls)
    options = []
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        annotation = str(f.type)
        kind = next((k for k in (bool, int, float) if annotation.startswith(k.__name__)), str)
        optional = "None" in annotation
        options.append(OptionField(f.name, kind, optional, f.default, docs.get(f.name, "")))
    return options


def _env_options() -> tuple[list[Any], list[Any]]:
    """The flags of the env arguments: `TextGenConfig`'s fields, then `DialogueConfig`'s."""
    from textgen_env.config import TextGenConfig
    from textgen_env.dialogue.config import DialogueConfig

    return _scalar_options(TextGenConfig, exclude=_NOT_FLAGS), _scalar_options(DialogueConfig)


def env_flag_names() -> list[str]:
    """The env argument names ``serve-env`` takes as flags."""
    generation, dialogue = _env_options()
    return [option.name for option in [*generation, *dialogue]]


def _serve_env(args: argparse.Namespace) -> int:
    from textgen_env.feedback.server import check_host
    from textgen_env.integrations.openenv_server import serve_env

    env_kwargs = {name: getattr(args, name) for name in env_flag_names() if hasattr(args, name)}
    try:  # the address and the JSON first, before minutes of model loading
        check_host(args.host, args.allow_remote)
        if args.reward_kwargs is not None:
            env_kwargs["reward_kwargs"] = json.loads(args.reward_kwargs)
    except json.JSONDecodeError as error:
        args.parser.error(f"Expected --reward-kwargs to be a JSON object, got {args.reward_kwargs!r}: {error}")
    except ValueError as error:
        args.parser.error(str(error))
    serve_env(
        args.env,
        host=args.host,
        port=args.port,
        allow_remote=args.allow_remote,
        allowed_hosts=args.allowed_host,
        max_sessions=args.max_sessions,
        session_timeout=args.session_timeout,
        **env_kwargs,
    )
    return 0


def add_serve_env_command(commands: Any) -> None:
    """Add ``serve-env`` to the ``textgen-env`` subcommands."""
    from agents.app.errors import add_debug_flag
    from agents.app.options import add_dataclass_flags

    serve = commands.add_parser(
        "serve-env",
        help="serve an env to OpenEnv clients (TRL, torchforge, SkyRL, ...) on this machine (127.0.0.1)",
        description="Serve an env over OpenEnv's WebSocket protocol; connect with "
        "textgen_env.integrations.openenv.TextGenEnvClient(base_url=URL) or OpenEnv's GenericEnvClient, URL being "
        "the one printed (its last path segment is the access token).",
    )
    add_debug_flag(serve)
    serve.add_argument("--env", choices=_SERVED, default="TextCompletion-v0", help="the env to serve")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other machines can reach (warns; clients need the token in the printed URL)",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a further name clients reach the server by (the Host header), e.g. this machine's network name",
    )
    serve.add_argument("--max-sessions", type=int, default=4, help="concurrent sessions (one env each)")
    serve.add_argument("--session-timeout", type=float, default=600.0, help="seconds before an idle session is closed")
    generation, dialogue = _env_options()
    group = serve.add_argument_group("env arguments (TextGen-v0's; unset: the env's default)")
    add_dataclass_flags(group, generation, absent_when_not_given=True)
    group.add_argument("--reward-kwargs", default=None, metavar="JSON", help="the reward's arguments as a JSON object")
    add_dataclass_flags(
        serve.add_argument_group("dialogue arguments (TextDialogue-v0 only)"), dialogue, absent_when_not_given=True
    )
    serve.set_defaults(handler=_serve_env, parser=serve)
