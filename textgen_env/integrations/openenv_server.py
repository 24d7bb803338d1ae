"""Serving our envs to OpenEnv clients: per-session envs over one model and reward, the access guard, the server.

The server is openenv-core's own FastAPI app (``create_fastapi_app``) behind `SessionGuard`, which applies the
feedback page's rules (`textgen_env.feedback.guard.AccessPolicy`): bound to 127.0.0.1 unless ``allow_remote``; the
``Host`` header must name this server (DNS rebinding); a browser ``Origin`` must be this server's own; and every
request needs the server's random token. OpenEnv's client sends no custom header, so the token is the URL's first
path segment: the client's ``base_url`` is `EnvServer.url` (``http://127.0.0.1:PORT/TOKEN``) and its WebSocket goes to
``/TOKEN/ws``.

Not served: OpenEnv's HTTP ``/reset``, ``/step`` and ``/state`` build a fresh env for every request (openenv-core
0.3.0), so they cannot hold an episode: the guard answers them 405 and points to the WebSocket session, which is
what OpenEnv's `EnvClient` uses. ``/health``, ``/schema``, ``/metadata`` (and FastAPI's ``/docs``) are served.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import gymnasium as gym
from transformers import PreTrainedModel

from textgen_env.completion import CompletionWrapper, TextCompletionEnv
from textgen_env.dialogue import TextDialogueEnv
from textgen_env.env import TextGenEnv
from textgen_env.feedback.guard import AccessPolicy, host_name, is_loopback
from textgen_env.feedback.server import bind_socket, check_host, check_port, timed_protocol
from textgen_env.integrations._deps import require
from textgen_env.integrations.openenv import (
    SERVED_ENVS,
    TextGenAction,
    TextGenObservation,
    session_factory,
)
from textgen_env.models import load_model
from textgen_env.rewards import Reward, make_reward
from textgen_env.validation import check_int

__all__ = ["EnvFactory", "EnvServer", "SessionGuard", "serve_env"]

_STATELESS_HTTP = ("/reset", "/step", "/state", "/mcp")
"""OpenEnv's HTTP routes that need a session this protocol version cannot give over HTTP (answered 405)."""

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]


class EnvFactory:
    """Builds one env per session, all sharing one loaded model, tokenizer and reward.

    Args:
        env_id: one of `SERVED_ENVS`.
        **env_kwargs: the env's arguments (``model`` a name, folder or instance; ``reward`` any reward spec).

    One env is built at once, so bad settings fail here rather than in the first session.
    """

    def __init__(self, env_id: str = "TextCompletion-v0", **env_kwargs: Any) -> None:
        if env_id not in SERVED_ENVS:
            raise ValueError(f"Expected env_id to be one of {list(SERVED_ENVS)}, got {env_id!r}")
        kwargs = dict(env_kwargs)
        if not isinstance(kwargs.get("model"), PreTrainedModel):  # one copy of the weights for every session
            device, dtype = kwargs.get("device", "cpu"), kwargs.get("dtype", "float32")
            model, tokenizer = load_model(
                kwargs.get("model"), tokenizer=kwargs.get("tokenizer"), device=device, dtype=dtype
            )
            kwargs.update(model=model, tokenizer=tokenizer)
        reward = kwargs.get("reward")
        if reward is not None and not isinstance(reward, Reward):  # one reward (and any model it loads) for all
            kwargs["reward"] = make_reward(reward, kwargs.pop("reward_kwargs", None))
        self.env_id = env_id
        self.env_kwargs = kwargs
        self().close()

    def __call__(self) -> gym.Env:
        if self.env_id == "TextGen-v0":
            return TextGenEnv(**self.env_kwargs)
        if self.env_id == "TextCompletion-v0":
            return TextCompletionEnv(**self.env_kwargs)
        return CompletionWrapper(TextDialogueEnv(**self.env_kwargs))


class SessionGuard:
    """ASGI middleware: the feedback page's Host, Origin and token rules for OpenEnv's routes (token in the path).

    A refused HTTP request gets ``{"error": "Expected ..., got ..."}``; a refused WebSocket is closed with code 1008
    before it opens. The token segment is removed from the path before OpenEnv's app sees it.
    """

    def __init__(self, app: ASGIApp, *, policy: AccessPolicy) -> None:
        self.app, self.policy = app, policy

    async def __call__(self, scope: Scope, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal, path = self._check(scope)
        if refusal is not None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": refusal[1][:120]})
            else:
                body = json.dumps({"error": refusal[1]}).encode("utf-8")
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": refusal[0], "headers": headers})
                await send({"type": "http.response.body", "body": body})
            return
        inner = {**scope, "path": path, "raw_path": path.encode("utf-8")}
        if scope["type"] == "http":
            await self.app(inner, receive, send)
            return

        async def send_close_quietly(message: dict[str, Any]) -> None:
            try:
                await send(message)
            except OSError:  # uvicorn's ClientDisconnected: openenv-core 0.3.0 closes sockets its client already
                if message["type"] != "websocket.close":  # closed (after a "close" message) and logs a traceback
                    raise

        await self.app(inner, receive, send_close_quietly)

    def _check(self, scope: Scope) -> tuple[tuple[int, str] | None, str]:
        """``((status, message) or None, the path without the token)``."""
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        host = headers.get("host", "")
        if not self.policy.allows_host(host):
            shown = repr(host[:80]) if host else "none"
            return (403, f"Expected a Host header naming this server ({self.policy.describe_hosts()}), got {shown}"), ""
        origin = headers.get("origin")
        if origin is not None and not self.policy.allows_origin(origin):
            return (403, f"Expected no Origin or this server's own (http://{host}), got {origin[:80]!r}"), ""
        token, _, rest = scope["path"][1:].partition("/")
        if not self.policy.allows_token(token):
            return (
                401,
                "Expected the server's token as the URL's first path segment (connect to the URL the server "
                "printed, http://HOST:PORT/TOKEN), got a wrong one or none",
            ), ""
        path = "/" + rest
        if scope["type"] == "http" and path.rstrip("/") in _STATELESS_HTTP:
            return (
                405,
                f"Expected episodes over the WebSocket session at /TOKEN/ws (OpenEnv's EnvClient), got HTTP "
                f"{path}: openenv-core's HTTP routes build a fresh env per request and cannot hold an episode",
            ), ""
        return None, path


class EnvServer:
    """One of `SERVED_ENVS` behind OpenEnv's server in a background thread: ``with EnvServer(EnvFactory(...)) as
    server:``, then ``TextGenEnvClient(base_url=server.url)``.

    Args:
        factory: builds one env per session.
        host: the address to bind (127.0.0.1: this machine only).
        port: the port; 0 takes any free one (read `url`).
        allow_remote: allow a `host` other machines can reach (warns).
        allowed_hosts: further names clients may reach the server by (``Host``).
        token: the secret in the URL's path; ``None`` draws a random one.
        max_sessions: concurrent WebSocket sessions (each holds an env; the model is shared).
        session_timeout: seconds of inactivity after which OpenEnv closes a session (None: never).
        request_timeout: seconds a client has to send an HTTP request's head.
    """

    def __init__(
        self,
        factory: EnvFactory,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_remote: bool = False,
        allowed_hosts: Iterable[str] = (),
        token: str | None = None,
        max_sessions: int = 4,
        session_timeout: float | None = 600.0,
        request_timeout: float = 10.0,
    ) -> None:
        uvicorn = require("uvicorn", "uvicorn", feature="The OpenEnv server")
        http_server = require("openenv.core.env_server.http_server", "openenv-core", feature="The OpenEnv server")
        types = require("openenv.core.env_server.types", "openenv-core", feature="The OpenEnv server")
        check_host(host, allow_remote)
        check_int("max_sessions", max_sessions, 1)
        if session_timeout is not None and not (isinstance(session_timeout, (int, float)) and session_timeout > 0):
            raise ValueError(
                f"Expected session_timeout to be a positive number of seconds or None, got {session_timeout!r}"
            )
        self._socket = bind_socket(host, check_port(port), what="the env server")
        try:  # a bad allowed host must not leave the port bound
            self.port: int = self._socket.getsockname()[1]
            limits: dict[str, Any] = {"body_timeout": request_timeout}
            if token is not None:
                limits["token"] = token
            self.access = AccessPolicy.for_server(host, self.port, allowed_hosts, **limits)
            concurrency = types.ConcurrencyConfig(max_concurrent_envs=max_sessions, session_timeout=session_timeout)
            app = http_server.create_fastapi_app(
                session_factory(factory, factory.env_id),
                TextGenAction,
                TextGenObservation,
                concurrency_config=concurrency,
            )
        except BaseException:
            self._socket.close()
            raise
        if not is_loopback(host):
            warnings.warn(
                f"The env server is bound to {host}, which other machines can reach: anyone with the URL (and its "
                f"token) can run episodes; it accepts the host names {self.access.describe_hosts()}",
                UserWarning,
                stacklevel=2,
            )
        config = uvicorn.Config(
            SessionGuard(app, policy=self.access),
            log_level="warning",
            http=timed_protocol(request_timeout),
            ws_max_size=1 << 20,  # an action is a completion: 1 MiB is plenty
            limit_concurrency=max_sessions + 8,
            timeout_keep_alive=5,
        )
        self.env_id, self.host = factory.env_id, host
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The ``base_url`` an OpenEnv client connects to: ``http://host:port/TOKEN`` (a wildcard host: 127.0.0.1)."""
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else host_name(self.host)
        return f"http://{shown}:{self.port}/{self.access.token}"

    def run(self) -> None:
        """Serve in this thread until Ctrl-C (or `stop` from another thread)."""
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._socket.close()

    def start(self, timeout: float = 30.0) -> EnvServer:
        self._thread = threading.Thread(target=self.run, name="openenv-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"Expected the env server to start within {timeout} s, got no server")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> EnvServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_env(
    env_id: str = "TextCompletion-v0",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    allow_remote: bool = False,
    allowed_hosts: Iterable[str] = (),
    max_sessions: int = 4,
    session_timeout: float | None = 600.0,
    announce: Callable[[str], Any] = print,
    **env_kwargs: Any,
) -> None:
    """Serve `env_id` to OpenEnv clients until Ctrl-C (what ``textgen-env serve-env`` runs); prints the URL."""
    check_host(host, allow_remote)  # before minutes of model loading
    server = EnvServer(
        EnvFactory(env_id, **env_kwargs),
        host=host,
        port=port,
        allow_remote=allow_remote,
        allowed_hosts=allowed_hosts,
        max_sessions=max_sessions,
        session_timeout=session_timeout,
    )
    announce(f"Serving {env_id} to OpenEnv clients at {server.url}")
    announce("  from textgen_env.integrations.openenv import TextGenEnvClient, TextGenAction")
    announce(f"  client = TextGenEnvClient(base_url={server.url!r}).sync()")
    server.run()
