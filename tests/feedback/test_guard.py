"""The feedback app answers only its person: Host, Origin and token checks, the JSON Content-Type, the body limit,
the security headers on every response, and errors that say whose fault they are (4xx the client's, 5xx the
server's) without echoing what a client sent in full. Through FastAPI's test client, as 127.0.0.1:8000."""

from __future__ import annotations

import hashlib
import json
import re
from base64 import b64encode

import pytest

from textgen_env.feedback import AccessPolicy, QuestionBoard
from textgen_env.feedback.app import page_html
from textgen_env.feedback.guard import TOKEN_HEADER, content_security_policy

pytest.importorskip("fastapi", reason="the web app needs textgen-env[feedback]")
from pydantic import BaseModel  # FastAPI's dependency: imported once FastAPI is known to be installed


def _logged(board) -> int:
    return len(board.log_path.read_text().splitlines())


def _answer(client, headers: dict[str, str]):
    question = client.get("/api/question").json()["question"]
    return client.post("/api/answer", json={"question_id": question["id"], "choice": "a"}, headers=headers)


@pytest.mark.parametrize(
    "host",
    ["attacker.example", "attacker.example:8000", "127.0.0.1", "127.0.0.1:9999", "localhost:8000.evil", ""],
    ids=["rebound-name", "rebound-name-port", "no-port", "other-port", "suffix", "empty"],
)
def test_a_foreign_host_header_is_refused_everywhere(client, board, host):
    for path in ("/", "/api/question", "/api/stats"):
        response = client.get(path, headers={"Host": host})
        assert response.status_code == 403, path
        assert response.json()["error"].startswith("Expected a Host header naming this server (127.0.0.1:8000")
    question = client.get("/api/question").json()["question"]  # as 127.0.0.1:8000
    body = {"question_id": question["id"], "choice": "a"}
    assert client.post("/api/answer", json=body, headers={"Host": host}).status_code == 403
    assert _logged(board) == 0 and board.next_question().id == question["id"]


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "LOCALHOST:8000", "[::1]:8000"])
def test_the_loopback_names_with_the_port_pass(client, host):
    assert client.get("/api/stats", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    "origin", ["http://attacker.example", "null", "http://127.0.0.1:9999", "https://127.0.0.1:8000/x"]
)
def test_a_post_from_a_foreign_origin_is_refused_and_not_logged(client, board, origin):
    response = _answer(client, {"Origin": origin})
    assert response.status_code == 403 and "Expected no Origin or this server's own" in response.json()["error"]
    assert _logged(board) == 0


def test_a_post_from_the_page_itself_passes(client, board):
    assert _answer(client, {"Origin": "http://127.0.0.1:8000"}).status_code == 200
    response = _answer(client, {"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403 and "cross-site" in response.json()["error"]
    assert _logged(board) == 1


@pytest.mark.parametrize("token", [None, "", "wrong-token-of-enough-length"], ids=["none", "empty", "wrong"])
def test_the_api_needs_the_token(board, access, make_client, token):
    client = make_client(board)
    headers = {TOKEN_HEADER: token} if token is not None else {}
    if token is None:
        del client.headers[TOKEN_HEADER]
    for response in (client.get("/api/question", headers=headers), _answer_without_id(client, headers)):
        assert response.status_code == 401
        assert response.json()["error"].startswith(f"Expected the server's token in the {TOKEN_HEADER} header")
    assert board.stats()["answered"] == 0 and board.next_question() is not None  # nothing reached the board
    assert _logged(board) == 0
    assert client.get("/", headers=headers).status_code == 200  # the page holds nothing secret: it loads, then asks


def _answer_without_id(client, headers):
    return client.post("/api/answer", json={"question_id": "x", "choice": "a"}, headers=headers)


def test_the_token_is_random_per_policy():
    first, second = AccessPolicy(), AccessPolicy()
    assert first.token != second.token and len(first.token) >= 40
    assert "token" not in repr(first) and first.token not in repr(first)
    with pytest.raises(ValueError, match="Expected token to be a string of at least 16 characters"):
        AccessPolicy(token="short")


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded"], ids=["none", "text", "form"]
)
def test_an_api_body_must_say_it_is_json(client, board, content_type):
    question = client.get("/api/question").json()["question"]
    body = json.dumps({"question_id": question["id"], "choice": "a"}).encode()  # the body a Blob post could carry
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post("/api/answer", content=body, headers=headers)
    assert response.status_code == 415 and response.json()["error"].startswith("Expected Content-Type application/json")
    assert _logged(board) == 0


class EchoBody(BaseModel):  # at module level: FastAPI resolves the (string) annotation in the module's globals
    choice: str


def test_fastapi_floor_refuses_json_without_a_json_content_type():
    """pyproject's floor is the FastAPI release that parses a body as JSON only when the request says it is JSON
    (0.132.0, strict_content_type); the installed FastAPI does so without the guard in front of it."""
    from pathlib import Path

    import fastapi
    from fastapi.testclient import TestClient

    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert re.findall(r'"fastapi>=([0-9.]+)"', pyproject) == ["0.132"]
    assert tuple(int(part) for part in fastapi.__version__.split(".")[:2]) >= (0, 132)

    bare = fastapi.FastAPI()

    @bare.post("/echo")
    def echo(body: EchoBody) -> str:
        return body.choice

    client = TestClient(bare)
    assert client.post("/echo", content=b'{"choice": "a"}', headers={"Content-Type": "application/json"}).json() == "a"
    assert client.post("/echo", content=b'{"choice": "a"}').status_code == 422  # no Content-Type: not parsed
    assert client.post("/echo", content=b'{"choice": "a"}', headers={"Content-Type": "text/plain"}).status_code == 422


def test_a_body_over_the_limit_is_a_413(client, board):
    declared = client.post("/api/answer", content=b"x" * (64 * 1024 + 1), headers={"Content-Type": "application/json"})
    assert declared.status_code == 413 and "at most 65536 bytes" in declared.json()["error"]
    chunked = client.post(  # no Content-Length: counted as it arrives
        "/api/skip", content=iter([b"{" + b" " * 40_000] * 2), headers={"Content-Type": "application/json"}
    )
    assert chunked.status_code == 413 and _logged(board) == 0


SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _request(client, case):
    json_type = {"Content-Type": "application/json"}
    return {
        "page": lambda: client.get("/"),
        "api": lambda: client.get("/api/question"),
        "not-found": lambda: client.get("/nope"),
        "bad-host": lambda: client.get("/", headers={"Host": "attacker.example"}),
        "no-token": lambda: client.get("/api/stats", headers={TOKEN_HEADER: "x"}),
        "too-big": lambda: client.post("/api/skip", content=b"x" * 70_000, headers=json_type),
        "malformed": lambda: client.post("/api/skip", content=b"{", headers=json_type),
    }[case]()


@pytest.mark.parametrize("case", ["page", "api", "not-found", "bad-host", "no-token", "too-big", "malformed"])
def test_every_response_carries_the_security_headers(client, case):
    response = _request(client, case)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert response.headers["cache-control"] == "no-store"
    assert response.status_code >= 400 or case in ("page", "api")
    if response.status_code >= 400:
        assert response.json()["error"].startswith("Expected")  # the page shows this text, never a parse error


def test_the_csp_allows_exactly_the_pages_own_script_by_hash():
    html = page_html()
    (script,) = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    digest = b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = content_security_policy(html)
    assert f"script-src 'sha256-{digest}';" in policy and "connect-src 'self'" in policy
    assert "onclick=" not in html and "<script src" not in html  # no inline handlers the hash could not cover


def test_a_server_fault_is_a_500_not_the_clients_fault(board, make_client):
    client = make_client(board, raise_server_exceptions=False)
    question = client.get("/api/question").json()["question"]
    board.log_path.unlink()
    board.log_path.mkdir()  # the log can no longer be appended to
    response = client.post("/api/answer", json={"question_id": question["id"], "choice": "a"})
    assert response.status_code == 500 and "x-frame-options" in response.headers
    assert response.json()["error"].startswith("Expected the server to handle the request, got a server error: ")
    assert "IsADirectoryError" in response.json()["error"]
    assert board.next_question().id == question["id"]  # still open: the person can answer again


def test_a_value_error_inside_the_server_is_not_reported_as_the_clients(tmp_path, make_client):
    def broken_completer(prompt: str, n: int) -> list[str]:
        raise ValueError("Expected the model to be loaded, got none")

    board = QuestionBoard(tmp_path / "log.jsonl", completer=broken_completer, prompts=["p"])
    response = make_client(board, raise_server_exceptions=False).get("/api/question")
    assert response.status_code == 500 and "ValueError: Expected the model to be loaded" in response.json()["error"]


@pytest.mark.parametrize(
    ("rating", "status"),
    [("9" * 400, 422), ("9" * 5000, 400), ("1e400", 422), ("NaN", 422), ("-Infinity", 422)],
    ids=["huge-int", "int-past-python-limit", "overflow-float", "nan", "minus-infinity"],
)
def test_an_absurd_rating_is_a_4xx_with_a_short_message(client, board, rating, status):
    client.post("/api/skip", json={"question_id": client.get("/api/question").json()["question"]["id"]})
    question = client.get("/api/question").json()["question"]
    body = f'{{"question_id": "{question["id"]}", "rating": {rating}}}'
    response = client.post("/api/answer", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status and response.json()["error"].startswith("Expected")
    assert len(response.json()["error"]) < 400 and _logged(board) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"question_id": "q" * 60_000, "choice": "a"},
        {"question_id": "x", "choice": "c" * 60_000},
        {"question_id": "x", "choice": "a", "k" * 60_000: 1},
    ],
    ids=["long-id", "long-choice", "long-key"],
)
def test_errors_do_not_echo_a_long_input_whole(client, board, body):
    response = client.post("/api/answer", json=body)
    assert 400 <= response.status_code < 500 and len(response.json()["error"]) < 500


def test_a_nesting_bomb_body_is_a_4xx(client, board):
    body = b'{"question_id": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    response = client.post("/api/answer", content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500 and response.json()["error"].startswith("Expected a JSON body")
