"""The feedback server over real sockets on 127.0.0.1: its URL carries the token, the Host check holds over HTTP,
a non-loopback address needs allow_remote (and warns), half-sent requests are dropped, too many at once get 503,
and ``textgen-env feedback serve`` checks its address and log before it loads a model."""

from __future__ import annotations

import argparse
import re
import socket
import time
from urllib.parse import urlsplit

import pytest

from textgen_env.feedback import FeedbackServer, QuestionBoard

pytest.importorskip("uvicorn", reason="the web app needs textgen-env[feedback]")
httpx = pytest.importorskip("httpx", reason="the web app needs textgen-env[feedback]")


@pytest.fixture
def server(board):
    with FeedbackServer(board, request_timeout=0.5) as running:
        yield running


def _raw(server: FeedbackServer, data: bytes, wait: float = 3.0) -> bytes:
    """Send `data` on a fresh connection and read until the server closes it (or `wait` seconds pass)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as connection:
        connection.sendall(data)
        received = b""
        try:
            while chunk := connection.recv(4096):
                received += chunk
        except TimeoutError:
            received += b"<still open>"
        return received


def test_the_url_carries_the_token_and_the_api_needs_it(server):
    parts = urlsplit(server.url)
    assert f"{parts.scheme}://{parts.netloc}" == server.base_url == f"http://127.0.0.1:{server.port}"
    assert parts.query == f"token={server.token}" and len(server.token) >= 40
    with httpx.Client(base_url=server.base_url, timeout=5) as client:
        assert client.get("/api/stats").status_code == 401
        assert client.get("/api/stats", headers=server.headers).json()["answered"] == 0
        rebound = client.get("/api/stats", headers={**server.headers, "Host": f"attacker.example:{server.port}"})
        assert rebound.status_code == 403  # DNS rebinding: right address, foreign name
        assert client.get("/", headers={"Host": f"localhost:{server.port}"}).status_code == 200


def test_each_server_draws_its_own_token(board):
    with FeedbackServer(board) as first, FeedbackServer(board) as second:
        assert first.token != second.token and first.port != second.port


def test_a_half_sent_request_head_is_dropped(server):
    started = time.monotonic()
    assert _raw(server, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode()) == b""  # closed, no answer
    assert time.monotonic() - started < 2.5


def test_a_half_sent_body_gets_408(server):
    head = (
        f"POST /api/skip HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nX-Feedback-Token: {server.token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    reply = _raw(server, head.encode() + b'{"question_id": ')
    assert reply.startswith(b"HTTP/1.1 408") and b"Expected the request body within 0.5 s" in reply


def test_too_many_connections_at_once_get_503(board):
    with FeedbackServer(board, request_timeout=30, limit_concurrency=3) as server:  # idle ones stay open meanwhile
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
        try:
            time.sleep(0.1)
            with httpx.Client(base_url=server.base_url, timeout=5) as client:
                assert client.get("/api/stats", headers=server.headers).status_code == 503
        finally:
            for connection in idle:
                connection.close()


def test_a_remote_address_needs_allow_remote_and_warns(board):
    with pytest.raises(ValueError, match=r"Expected a loopback host .*got '0\.0\.0\.0'.*allow_remote=True"):
        FeedbackServer(board, host="0.0.0.0")
    with pytest.warns(UserWarning, match=r"bound to 0\.0\.0\.0, which other machines can reach.*myhost\.lan"):
        server = FeedbackServer(board, host="0.0.0.0", allow_remote=True, allowed_hosts=["MyHost.lan"])
    with server, httpx.Client(base_url=server.base_url, timeout=5, headers=server.headers) as client:
        assert client.get("/api/stats", headers={"Host": f"myhost.lan:{server.port}"}).status_code == 200
        assert client.get("/api/stats", headers={"Host": f"otherhost.lan:{server.port}"}).status_code == 403
    with pytest.raises(ValueError, match="Expected allowed_hosts to hold host names without scheme or port"):
        FeedbackServer(board, allowed_hosts=["http://myhost.lan:8000"])


def test_a_port_in_use_fails_at_once(board, server):
    with pytest.raises(OSError, match=rf"Expected to bind the feedback page to 127\.0\.0\.1:{server.port}, got"):
        FeedbackServer(board, port=server.port)


@pytest.mark.parametrize("port", [-1, 70000, "80", True], ids=["negative", "too-big", "str", "bool"])
def test_server_port_is_checked(tmp_path, port):
    with pytest.raises(ValueError, match="Expected port to be an int from 0 to 65535"):
        FeedbackServer(QuestionBoard(tmp_path / "f.jsonl"), port=port)


def _serve_command(argv: list[str]) -> argparse.Namespace:
    from agents.app.feedback_cli import add_feedback_commands

    parser = argparse.ArgumentParser(prog="textgen-env")
    add_feedback_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_feedback_serve_command_passes_its_flags(monkeypatch, tmp_path):
    import textgen_env.feedback as feedback

    seen = {}
    monkeypatch.setattr(feedback, "make_board", lambda log, **kwargs: seen.update(log=log, **kwargs) or "board")
    monkeypatch.setattr(feedback, "serve", lambda board, **kwargs: seen.update(board=board, **kwargs))
    log = str(tmp_path / "f.jsonl")
    args = _serve_command(["feedback", "serve", "--log", log, "--mode", "pair"])
    assert args.handler(args) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8000 and seen["mode"] == "pair" and seen["board"] == "board"
    assert seen["allow_remote"] is False and seen["allowed_hosts"] == []
    argv = ["feedback", "serve", "--log", log, "--host", "0.0.0.0", "--allow-remote", "--allowed-host", "box.lan"]
    args = _serve_command(argv)
    assert args.handler(args) == 0 and seen["allow_remote"] is True and seen["allowed_hosts"] == ["box.lan"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--host", "0.0.0.0"], r"Expected a loopback host .*got '0\.0\.0\.0'.*--allow-remote"),
        (["--log", "{tmp}"], r"Expected a feedback log that can be appended to, got '.*': Is a directory"),
    ],
    ids=["remote-without-flag", "log-is-a-folder"],
)
def test_feedback_serve_refuses_before_loading_a_model(monkeypatch, tmp_path, capsys, argv, message):
    import textgen_env.feedback as feedback

    monkeypatch.setattr(feedback, "make_board", lambda *a, **k: pytest.fail("loaded a model before checking"))
    argv = ["feedback", "serve", "--log", str(tmp_path / "f.jsonl"), *[a.format(tmp=tmp_path) for a in argv]]
    args = _serve_command(argv)
    with pytest.raises(SystemExit) as exit_info:
        args.handler(args)
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err.replace("\n", " "))


def test_serve_announces_the_url_with_its_token(monkeypatch, board):
    from textgen_env.feedback import serve

    monkeypatch.setattr(FeedbackServer, "run", lambda self: lines.append(("ran", self.token)))
    lines: list = []
    serve(board, port=0, announce=lines.append)
    announced, (_, token) = lines
    assert f"/?token={token}" in announced and announced.startswith("feedback page on http://127.0.0.1:")


def test_the_synthetic_user_answers_through_the_url_with_its_token(server, board):
    from textgen_env.feedback import SyntheticUser

    user = SyntheticUser("keyword", {"keywords": ["1"]})
    assert user.answer_page(server.url, 4) == {"pair": 2, "rating": 2}  # its own httpx client, as notebook 07 does
    assert board.stats()["answered"] == 4
