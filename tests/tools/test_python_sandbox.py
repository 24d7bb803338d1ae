"""The python tool's sandbox, measured: code that loops is killed, allocations past the limit fail, writes outside
the working folder, processes and sockets are refused, output is capped, and nothing is left behind."""

from __future__ import annotations

import os
import sys
import tempfile

import pytest

from textgen_env.tools import PythonSandbox, python_tool
from textgen_env.tools.python_sandbox import _platform_allows

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the limits under test are Linux's")


@pytest.fixture(scope="module")
def sandbox():
    return PythonSandbox(timeout_s=5.0, cpu_time_s=5, memory_mb=256, max_output_chars=200)


def _sandbox_folders() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("textgen-python-")}


def test_code_runs_and_prints(sandbox):
    result = sandbox.run("import math\nprint(math.factorial(20))")
    assert result.ok and result.text() == "2432902008176640000"
    assert python_tool(sandbox).call({"code": "print(6 * 7)"}) == "42"


def test_an_endless_loop_is_killed_at_the_wall_clock_limit():
    result = PythonSandbox(timeout_s=1.0).run("while True:\n    pass")
    assert result.timed_out and result.returncode is None and not result.ok
    assert result.text() == "error: timed out (killed)"


def test_an_allocation_past_the_memory_limit_fails(sandbox):
    result = sandbox.run("block = bytearray(2 * 1024 ** 3)\nprint('allocated')")
    assert not result.ok and "allocated" not in result.stdout and "MemoryError" in result.text()


def test_writing_outside_the_working_folder_is_refused(sandbox, tmp_path):
    target = tmp_path / "escaped.txt"
    for code in (
        f"open({str(target)!r}, 'w').write('x')",
        f"import pathlib; pathlib.Path({str(target)!r}).write_text('x')",
        f"import os; os.rename('main.py', {str(target)!r})",
        f"import shutil; shutil.copyfile('main.py', {str(target)!r})",
    ):
        result = sandbox.run(code)
        assert not result.ok and "PermissionError: sandbox:" in result.text(), code
    assert not target.exists()
    inside = sandbox.run("open('notes.txt', 'w').write('kept')\nprint(open('notes.txt').read())")
    assert inside.ok and inside.stdout.strip() == "kept"  # its own folder is writable


@pytest.mark.parametrize(
    "code",
    [
        "import os; os.system('true')",
        "import subprocess; subprocess.run(['true'])",
        "import os; os.fork()",
        "import socket; socket.create_connection(('127.0.0.1', 9))",
        "import ctypes; ctypes.CDLL(None).getpid()",
    ],
    ids=["system", "subprocess", "fork", "socket", "ctypes-call"],
)
def test_processes_sockets_and_c_calls_are_refused(sandbox, code):
    result = sandbox.run(code)
    assert not result.ok and "PermissionError: sandbox:" in result.text()


def test_output_is_capped(sandbox):
    result = sandbox.run("print('a' * 100_000)")
    assert result.output_truncated and len(result.stdout) <= 200
    assert result.text().endswith("error: output limit reached (truncated)")


def test_nothing_is_left_behind(sandbox):
    before = _sandbox_folders()
    result = sandbox.run("import os\nopen('big.bin', 'wb').write(b'x' * 100)\nprint(os.getpid())")
    pid = int(result.stdout)
    assert _sandbox_folders() == before  # the working folder and what the code wrote are gone
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the process is gone


@pytest.mark.skipif(not _platform_allows("unshare"), reason="no network namespaces here (documented)")
def test_the_network_namespace_is_empty(sandbox):
    code = (
        "lines = open('/proc/self/net/dev').read().splitlines()[2:]\n"
        "print(sorted(line.split(':')[0].strip() for line in lines))"
    )
    result = sandbox.run(code)  # the interfaces of the process's own network namespace
    assert result.network_isolated and result.stdout.strip() == "['lo']"


def test_bad_sandbox_settings_raise():
    with pytest.raises(ValueError, match="Expected timeout_s to be a number in"):
        PythonSandbox(timeout_s=0)
    with pytest.raises(ValueError, match="Expected memory_mb to be an int >= 64"):
        PythonSandbox(memory_mb=1)
    with pytest.raises(TypeError, match="Expected code to be a str"):
        PythonSandbox().run(b"print(1)")  # type: ignore[arg-type]  # the mistake under test
