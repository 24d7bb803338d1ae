"""Running the feedback web app: `serve` (blocking, what ``textgen-env feedback serve`` calls) and `FeedbackServer`
(in a background thread, for a training job that asks its questions in the browser, for tests and demos).

Both bind 127.0.0.1 by default: the page writes to the log of whoever runs it. Binding any other address needs
``allow_remote=True`` and warns; either way the API answers only requests that carry the server's random token
(`FeedbackServer.url` holds it) and name the server in ``Host`` (see `textgen_env.feedback.guard`). The socket is
bound before the server starts, so the port (and the URL) is known at once, and a port in use fails at once.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Literal

from textgen_env.feedback.app import FEEDBACK_EXTRA, create_app
from textgen_env.feedback.guard import TOKEN_HEADER, AccessPolicy, host_name, is_loopback
from textgen_env.feedback.log import open_log
from textgen_env.feedback.questions import ModelCompleter, QuestionBoard

__all__ = ["FeedbackServer", "bind_socket", "check_host", "check_port", "make_board", "serve", "timed_protocol"]


def _uvicorn() -> Any:
    try:
        import uvicorn
    except ModuleNotFoundError as error:
        from gymnasium.error import DependencyNotInstalled

        raise DependencyNotInstalled(
            f"The feedback web app needs uvicorn, which is not installed. Run: {FEEDBACK_EXTRA}"
        ) from error
    return uvicorn


def make_board(
    log_path: str | os.PathLike,
    *,
    model: Any = None,
    prompts: Any = "movie_reviews",
    mode: Literal["pair", "rating", "mixed"] = "mixed",
    max_new_tokens: int = 24,
    temperature: float = 1.0,
    seed: int = 0,
) -> QuestionBoard:
    """A `QuestionBoard` whose questions are completions of `model` (a name, a folder, ``None`` for the embedded
    default, or a ``(model, tokenizer)`` pair) on `prompts`. The log is opened first, before the model loads."""
    from textgen_env.models import load_model

    open_log(log_path)
    loaded, tokenizer = model if isinstance(model, tuple) else load_model(model)
    completer = ModelCompleter(loaded, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    return QuestionBoard(log_path, completer=completer, prompts=prompts, mode=mode, seed=seed)


def check_port(port: object) -> int:
    """`port` if it is a TCP port number (0: any free one)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"Expected port to be an int from 0 to 65535 (0: any free port), got {port!r}")
    return port


def check_host(host: object, allow_remote: bool) -> str:
    """`host` if the server may bind it: a loopback address always, any other only with `allow_remote`."""
    if not isinstance(host, str) or not host:
        raise ValueError(f"Expected host to be an address such as '127.0.0.1', got {host!r}")
    if not is_loopback(host) and not allow_remote:
        raise ValueError(
            f"Expected a loopback host (127.0.0.1, ::1 or localhost), got {host!r}, which other machines can reach; "
            "pass allow_remote=True (--allow-remote) to serve them (they then need the token in the URL)"
        )
    return host


def bind_socket(host: str, port: int, what: str = "the feedback page") -> socket.socket:
    """A TCP socket bound to `host`:`port` (``localhost``: 127.0.0.1), not yet listening (`what`: for the message)."""
    address = "127.0.0.1" if host.lower() == "localhost" else host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
    except OSError as error:
        sock.close()
        message = f"Expected to bind {what} to {host}:{port}, got: {error.strerror}"
        raise OSError(error.errno, message) from None
    return sock


def timed_protocol(timeout: float) -> type:
    """uvicorn's h11 protocol, closing a connection whose next request head has not fully arrived `timeout`
    seconds after the connection opened or the previous response ended (uvicorn itself waits forever)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        _head_timer: Any = None
        _waiting_since: Any = None

        def _arm(self) -> None:
            self._disarm()
            self._waiting_since = self.scope  # the last request's scope: a new head replaces it
            self._head_timer = self.loop.call_later(timeout, self._drop)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _drop(self) -> None:
            if self.scope is self._waiting_since and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def handle_events(self) -> None:
            super().handle_events()
            if self.scope is not self._waiting_since:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return TimedH11Protocol


class FeedbackServer:
    """The web app in a background thread: ``with FeedbackServer(board) as server: ... server.url ...``.

    Args:
        board: the questions and the log.
        host: the address to bind (127.0.0.1: this machine only).
        port: the port; 0 takes any free one (read it from `url`).
        allow_remote: allow a `host` other machines can reach (warns).
        allowed_hosts: further names a browser may reach the server by (``Host``), e.g. this machine's name on the
            network; the loopback names and `host` itself are always allowed.
        token: the API's secret; ``None`` draws a random one (32 bytes, URL-safe).
        request_timeout: seconds a client has to send a request's head, and again its body.
        max_body_bytes: the largest request body.
        limit_concurrency: connections and requests at once before the server answers 503.
    """

    def __init__(
        self,
        board: QuestionBoard,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_remote: bool = False,
        allowed_hosts: Iterable[str] = (),
        token: str | None = None,
        request_timeout: float = 10.0,
        max_body_bytes: int = 64 * 1024,
        limit_concurrency: int = 32,
    ) -> None:
        uvicorn = _uvicorn()
        check_host(host, allow_remote)
        if not isinstance(request_timeout, (int, float)) or not 0 < request_timeout < math.inf:
            raise ValueError(f"Expected request_timeout to be a positive finite number, got {request_timeout!r}")
        if isinstance(limit_concurrency, bool) or not isinstance(limit_concurrency, int) or limit_concurrency < 1:
            raise ValueError(f"Expected limit_concurrency to be a positive int, got {limit_concurrency!r}")
        limits: dict[str, Any] = {"max_body_bytes": max_body_bytes, "body_timeout": request_timeout}
        if token is not None:
            limits["token"] = token
        self._socket = bind_socket(host, check_port(port))
        try:  # a bad allowed host or a missing FastAPI must not leave the port bound
            self.port: int = self._socket.getsockname()[1]
            self.access = AccessPolicy.for_server(host, self.port, allowed_hosts, **limits)
            app = create_app(board, self.access)
        except BaseException:
            self._socket.close()
            raise
        if not is_loopback(host):
            warnings.warn(
                f"The feedback page is bound to {host}, which other machines can reach: anyone with the URL (and its "
                f"token) can answer; the page accepts the host names {self.access.describe_hosts()}",
                UserWarning,
                stacklevel=2,
            )
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            http=timed_protocol(request_timeout),
            limit_concurrency=limit_concurrency,
            timeout_keep_alive=5,
        )
        self.board, self.host = board, host
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the server (a wildcard host shows as 127.0.0.1)."""
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else host_name(self.host)
        return f"http://{shown}:{self.port}"

    @property
    def token(self) -> str:
        """The secret the API requires (in the ``X-Feedback-Token`` header; the page takes it from its URL)."""
        return self.access.token

    @property
    def url(self) -> str:
        """The page's URL with the token: what a person opens."""
        return f"{self.base_url}/?token={self.token}"

    @property
    def headers(self) -> dict[str, str]:
        """The header an API client (httpx, the synthetic user) sends with every request."""
        return {TOKEN_HEADER: self.token}

    def run(self) -> None:
        """Serve in this thread until Ctrl-C (or `stop` from another thread)."""
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._socket.close()

    def start(self, timeout: float = 10.0) -> FeedbackServer:
        self._thread = threading.Thread(target=self.run, name="feedback-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"Expected the feedback server to start within {timeout} s, got no server")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> FeedbackServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(
    board: QuestionBoard,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    allow_remote: bool = False,
    allowed_hosts: Iterable[str] = (),
    announce: Callable[[str], Any] = print,
) -> None:
    """Serve `board`'s page until Ctrl-C; `announce` gets the line with the page's URL (and its token) first."""
    server = FeedbackServer(board, host=host, port=port, allow_remote=allow_remote, allowed_hosts=allowed_hosts)
    announce(
        f"feedback page on {server.url}\n(answers appended to {os.fspath(board.log_path)}; open the URL with its "
        "token, which this server requires; Ctrl-C stops it)"
    )
    server.run()
