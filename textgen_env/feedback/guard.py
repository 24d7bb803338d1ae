"""The feedback app's gate: who may talk to it (Host, Origin, token), how much and how slowly they may send, the
security headers on every response, and the JSON answer when the server itself fails.

Why each check (the page writes to the log a reward model later trains on, so whoever can post answers steers it):

- **Host**: a web page the person visits can rebind its own DNS name to 127.0.0.1 and then read this server as
  "same origin"; the browser still sends the attacker's name in ``Host``, so only this server's own names pass.
- **Origin**: a browser names the page that sent a request; one from another site is refused.
- **Token**: a random secret per server, printed in the page's URL (as Jupyter does); the page sends it in the
  ``X-Feedback-Token`` header of every API call. Other local users and other sites cannot read it, and a custom
  header cannot be sent cross-site without a CORS preflight, which this server never grants.
- **Content-Type**: an API body must say ``application/json`` (a cross-site Blob or text/plain post cannot).
- **Size and time**: a body over `AccessPolicy.max_body_bytes` gets 413, one not sent within
  `AccessPolicy.body_timeout` seconds 408.

`RequestGuard` is plain ASGI middleware; `create_app` installs it. It needs no FastAPI.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import math
import re
import secrets
from base64 import b64encode
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "LOOPBACK_NAMES",
    "TOKEN_HEADER",
    "AccessPolicy",
    "RequestGuard",
    "content_security_policy",
    "is_loopback",
]

TOKEN_HEADER = "X-Feedback-Token"
"""The request header that carries the server's token to the API."""
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
"""The names of this machine a browser may put in ``Host`` for a server bound to the loopback interface."""

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
_NAME = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)$")


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or ``localhost``) is this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str:
    """`host` as it appears in a ``Host`` header: lower case, an IPv6 address in brackets."""
    host = host.strip().lower()
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def _split_host(value: str) -> tuple[str, int] | None:
    """``(name, port)`` of a ``Host`` header value (port 80 when it names none); ``None`` when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value.partition("]")
        name += bracket
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:]
    else:
        name, _, port_text = value.partition(":")
    if not _NAME.match(name) or (port_text and not port_text.isdigit()) or len(port_text) > 5:
        return None
    return name, int(port_text) if port_text else 80


def _short(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


@dataclass(frozen=True)
class AccessPolicy:
    """Who the feedback app answers, and the limits of a request.

    Args:
        token: the secret the API requires in the ``X-Feedback-Token`` header (random by default).
        names: the host names a ``Host`` header may carry (loopback names by default).
        port: the port a ``Host`` header must carry; ``None`` accepts any (an app not yet bound, in tests).
        max_body_bytes: the largest request body (larger: 413).
        body_timeout: seconds a client has to send a whole request body (slower: 408).
    """

    token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    names: frozenset[str] = LOOPBACK_NAMES
    port: int | None = None
    max_body_bytes: int = 64 * 1024
    body_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.token, str) or len(self.token) < 16:
            raise ValueError(f"Expected token to be a string of at least 16 characters, got {type(self.token)}")
        if not self.names or not all(isinstance(n, str) and _NAME.match(n) for n in self.names):
            raise ValueError(f"Expected names to be host names such as 'localhost', got {sorted(self.names)!r}")
        if self.port is not None and (isinstance(self.port, bool) or not isinstance(self.port, int)):
            raise ValueError(f"Expected port to be an int or None, got {self.port!r}")
        if isinstance(self.max_body_bytes, bool) or not isinstance(self.max_body_bytes, int) or self.max_body_bytes < 1:
            raise ValueError(f"Expected max_body_bytes to be a positive int, got {self.max_body_bytes!r}")
        if not isinstance(self.body_timeout, (int, float)) or not 0 < self.body_timeout < math.inf:
            raise ValueError(f"Expected body_timeout to be a positive finite number, got {self.body_timeout!r}")

    @classmethod
    def for_server(cls, host: str, port: int, allowed_hosts: Iterable[str] = (), **limits: Any) -> AccessPolicy:
        """The policy of a server bound to `host`:`port`: the loopback names, `host` itself unless it is a wildcard
        (``0.0.0.0``, ``::``), and `allowed_hosts` (names other machines reach it by)."""
        names = set(LOOPBACK_NAMES)
        if host not in ("0.0.0.0", "::", ""):
            names.add(host_name(host))
        for name in allowed_hosts:
            if not isinstance(name, str) or not _NAME.match(host_name(name)):
                raise ValueError(f"Expected allowed_hosts to hold host names without scheme or port, got {name!r}")
            names.add(host_name(name))
        return cls(names=frozenset(names), port=port, **limits)

    def allows_host(self, value: str) -> bool:
        parsed = _split_host(value)
        return parsed is not None and parsed[0] in self.names and (self.port is None or parsed[1] == self.port)

    def allows_origin(self, origin: str) -> bool:
        parts = urlsplit(origin)
        return parts.scheme == "http" and not parts.path.strip("/") and self.allows_host(parts.netloc)

    def allows_token(self, value: str) -> bool:
        return hmac.compare_digest(value.encode("utf-8", "replace"), self.token.encode("utf-8"))

    def describe_hosts(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return ", ".join(f"{name}{port}" for name in sorted(self.names))


def content_security_policy(html: str) -> str:
    """A CSP for `html` that runs only its own inline ``<script>`` and ``<style>`` blocks (by their SHA-256), talks
    only to this server, and cannot be framed."""

    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
        digests = [b64encode(hashlib.sha256(block.encode("utf-8")).digest()).decode() for block in blocks]
        return " ".join(f"'sha256-{digest}'" for digest in digests) or "'none'"

    return (
        f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


class RequestGuard:
    """ASGI middleware that applies an `AccessPolicy` to every HTTP request and adds the security headers to every
    response; a request it refuses gets ``{"error": "Expected ..., got ..."}`` and never reaches the app. An
    exception the app raises becomes a 500 with the same shape (and is raised on, for the server's log).

    Args:
        app: the ASGI app behind the gate.
        policy: who may call it and the request limits.
        csp: the ``Content-Security-Policy`` of every response.
        api_prefix: paths that need the token (the page itself holds nothing secret and needs none).
    """

    def __init__(self, app: ASGIApp, *, policy: AccessPolicy, csp: str, api_prefix: str = "/api/") -> None:
        self.app, self.policy, self.api_prefix = app, policy, api_prefix
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
            (b"cache-control", b"no-store"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {name.lower() for name, _ in self.headers}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        if scope["type"] != "http":  # no websocket routes: refuse the upgrade before the app sees it
            await send({"type": "websocket.close", "code": 1008})
            return
        refusal = self._refusal(scope)
        if refusal is None:
            body, refusal = await self._read_body(scope, receive)
        if refusal is not None:
            await self._respond(send_with_headers, *refusal)
            return
        replayed = False

        async def receive_once() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, whenever it comes

        try:
            await self.app(scope, receive_once, send_with_headers)
        except Exception as error:
            if not started:
                text = f"{type(error).__name__}: {error}"[:300]
                message = f"Expected the server to handle the request, got a server error: {text}"
                await self._respond(send_with_headers, 500, message)
            raise

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        """``(status, message)`` when the request's head breaks the policy, else ``None``."""
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        host = headers.get("host", "")
        if not self.policy.allows_host(host):
            hosts = self.policy.describe_hosts()
            return 403, f"Expected a Host header naming this server ({hosts}), got {_short(host) if host else 'none'}"
        origin = headers.get("origin")
        if origin is not None and not self.policy.allows_origin(origin):
            return 403, f"Expected no Origin or this server's own (http://{host}), got {_short(origin)}"
        if not scope["path"].startswith(self.api_prefix):
            return None
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            site = _short(headers["sec-fetch-site"])
            return 403, f"Expected a request from this server's own page, got one from a {site} page (Sec-Fetch-Site)"
        token = headers.get(TOKEN_HEADER.lower())
        if token is None or not self.policy.allows_token(token):
            return 401, (
                f"Expected the server's token in the {TOKEN_HEADER} header (open the page through the URL with "
                f"?token=... that the server printed), got {'none' if token is None else 'a wrong one'}"
            )
        if scope["method"] not in ("GET", "HEAD"):
            media = headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "application/json":
                return 415, f"Expected Content-Type application/json, got {_short(media) if media else 'none'}"
        declared = headers.get("content-length", "0")
        if not declared.isdigit():
            return 400, f"Expected a Content-Length that is a whole number, got {_short(declared)}"
        if int(declared) > self.policy.max_body_bytes:
            return 413, f"Expected a request body of at most {self.policy.max_body_bytes} bytes, got {declared}"
        return None

    async def _read_body(self, scope: Scope, receive: Receive) -> tuple[bytes, tuple[int, str] | None]:
        """The whole body, read within the time limit and the size limit (or the refusal)."""
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.policy.body_timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except asyncio.TimeoutError:
                return b"", (408, f"Expected the request body within {self.policy.body_timeout:g} s, got part of it")
            if message["type"] == "http.disconnect":
                return b"", (400, "Expected a whole request body, got a client that disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.policy.max_body_bytes:
                return b"", (413, f"Expected a request body of at most {self.policy.max_body_bytes} bytes, got more")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None

    @staticmethod
    async def _respond(send: Send, status: int, message: str) -> None:
        body = json.dumps({"error": message}).encode("utf-8")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
