"""Running the feedback web app: `serve` (blocking, what ``textgen-env feedback serve`` calls) and `FeedbackServer`
(in a background thread, for a training job that asks its questions in the browser, for tests and demos).

Both bind 127.0.0.1 by default: the page writes to the log of whoever runs it, so it is not for other machines.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Literal

from textgen_env.feedback.app import FEEDBACK_EXTRA, create_app
from textgen_env.feedback.questions import ModelCompleter, QuestionBoard

__all__ = ["FeedbackServer", "make_board", "serve"]


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
    default, or a ``(model, tokenizer)`` pair) on `prompts`."""
    from textgen_env.models import load_model

    loaded, tokenizer = model if isinstance(model, tuple) else load_model(model)
    completer = ModelCompleter(loaded, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    return QuestionBoard(log_path, completer=completer, prompts=prompts, mode=mode, seed=seed)


def _check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"Expected port to be an int from 0 to 65535 (0: any free port), got {port!r}")
    return port


def serve(board: QuestionBoard, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve `board`'s page at ``http://host:port`` until Ctrl-C."""
    uvicorn = _uvicorn()
    uvicorn.run(create_app(board), host=host, port=_check_port(port), log_level="warning")


class FeedbackServer:
    """The web app in a background thread: ``with FeedbackServer(board) as server: ... server.url ...``.

    Args:
        board: the questions and the log.
        host: the address to bind (127.0.0.1: this machine only).
        port: the port; 0 takes any free one (read it from `url`).
    """

    def __init__(self, board: QuestionBoard, *, host: str = "127.0.0.1", port: int = 0) -> None:
        uvicorn = _uvicorn()
        config = uvicorn.Config(
            create_app(board), host=host, port=_check_port(port), log_level="warning", lifespan="off"
        )
        self.board = board
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of the server (known once it started)."""
        if self._url is None:
            raise RuntimeError("Expected a started FeedbackServer, got one that was never started")
        return self._url

    def start(self, timeout: float = 10.0) -> FeedbackServer:
        self._thread = threading.Thread(target=self._server.run, name="feedback-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"Expected the feedback server to start within {timeout} s, got no server")
            time.sleep(0.01)
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        self._url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FeedbackServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
