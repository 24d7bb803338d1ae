"""Fixtures for the reward tests: the network switched off, in this process or in a fresh one.

The tiny model and tokenizer come from the `tiny` fixture of ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable

import pytest

NO_NETWORK_CODE = """
import socket

def _refuse(*args, **kwargs):
    raise OSError("network access attempted in an offline test")

socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
"""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection raises OSError instead of waiting on the network."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted in an offline test")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def run_offline(tmp_path) -> Callable[..., subprocess.CompletedProcess]:
    """Run Python `code` in a fresh process with the network refused, HF_HUB_OFFLINE=1 and an empty NLTK data
    folder; returns the finished process (stdout and stderr as text), failing the test on a non-zero exit."""

    def run(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "NLTK_DATA": str(tmp_path / "nltk_data")}
        result = subprocess.run(
            [sys.executable, "-c", NO_NETWORK_CODE + code],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    return run
