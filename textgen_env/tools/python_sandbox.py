"""The `python` tool: code run in a separate, limited process in an empty temporary folder that is removed after.

What is enforced, and how (``tests/tools/test_python_sandbox.py`` measures each one that is marked *tested*):

* **A separate process** (``python -I``: no user site-packages, no ``PYTHON*`` environment variables) in its own
  session, with an empty environment but ``PATH``, ``HOME`` (the working folder) and ``LANG``. *tested*
* **Wall-clock limit**: the whole process group is killed (SIGKILL) at ``timeout_s``. *tested* (an endless loop)
* **CPU-time limit** ``RLIMIT_CPU`` (the kernel kills the process). *documented* (the wall-clock kill comes first
  for a single-threaded loop)
* **Memory limit** ``RLIMIT_AS`` (allocations past it fail with ``MemoryError``). *tested*
* **Output limit**: stdout and stderr go to files in the working folder, each capped by ``RLIMIT_FSIZE`` (the kernel
  stops the process when it writes past it); the result keeps the first ``max_output_chars``. *tested*
* **File writes only inside the working folder**: an audit hook (`textgen_env.tools.sandbox_child`) refuses
  writing, creating, renaming or deleting files elsewhere, starting processes, sockets and ``ctypes``. *tested*
  When the env runs as root, the process also drops to the unprivileged ``nobody`` user, so the OS itself refuses
  writes to root-owned places (world-writable ones like ``/tmp`` are then guarded by the hook only).
* **No network**: when the process may create a network namespace (Linux, root or ``CAP_SYS_ADMIN``), it runs in a
  new, empty one (``unshare(CLONE_NEWNET)``: no interface but a down loopback); elsewhere only the audit hook refuses
  sockets. `SandboxResult.network_isolated` says which applied. *tested where available*
* **Nothing left behind**: the working folder is deleted and the process group killed after every run. *tested*

Not isolated: the process can **read** any file its user can read (the package, the model cache, ``/etc``); it
shares the kernel, CPU and disk with the env; native code (a C extension it imports) can bypass the audit hook, so
the OS limits above are the boundary for such code. On macOS and Windows only the limits that the platform offers
apply (no ``RLIMIT_AS`` on macOS, no ``resource`` on Windows, no namespaces): use a container there for untrusted
code.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from textgen_env.tools.base import Tool
from textgen_env.validation import check_int

__all__ = ["PythonSandbox", "SandboxResult", "python_tool"]

_CHILD = Path(__file__).with_name("sandbox_child.py")
_CLONE_NEWNET = 0x40000000
_NOBODY = 65534


@dataclass(frozen=True)
class SandboxResult:
    """What one sandboxed run produced."""

    stdout: str
    """The first ``max_output_chars`` characters the code printed."""
    stderr: str
    """The last ``max_output_chars`` characters of its error output (a traceback's end when it failed)."""
    returncode: int | None
    """The exit status; negative: killed by that signal; None: killed at the wall-clock limit."""
    timed_out: bool
    """Killed at the wall-clock limit."""
    output_truncated: bool
    """The printed output was cut at the limit."""
    network_isolated: bool
    """The process ran in its own empty network namespace."""
    seconds: float
    """Wall-clock duration of the run (measured under whatever load the machine has)."""

    @property
    def ok(self) -> bool:
        """The code ran to the end without an error."""
        return self.returncode == 0 and not self.timed_out

    def text(self) -> str:
        """The result as the tool returns it to the policy: the output, then what went wrong, if anything."""
        parts = [self.stdout.rstrip("\n")] if self.stdout.strip() else []
        if self.timed_out:
            parts.append("error: timed out (killed)")
        elif self.returncode == -signal.SIGXFSZ or self.output_truncated:
            parts.append("error: output limit reached (truncated)")
        elif self.returncode == -signal.SIGXCPU or self.returncode == -signal.SIGKILL:
            parts.append("error: CPU time limit reached (killed)")
        elif self.returncode != 0:
            last = self.stderr.strip().splitlines()[-1:] or [f"exit status {self.returncode}"]
            parts.append(f"error: {last[0]}")
        return "\n".join(parts) if parts else "(no output)"


class PythonSandbox:
    """Runs code strings in a limited child process (see the module docstring for what is and is not isolated).

    Args:
        timeout_s: wall-clock limit per run, in seconds.
        cpu_time_s: CPU-time limit per run (``RLIMIT_CPU``), whole seconds.
        memory_mb: address-space limit (``RLIMIT_AS``) in MiB.
        max_output_chars: characters of stdout (and of stderr) kept; the files are capped at 4 bytes per char.
        isolate_network: run in a new network namespace where the platform allows it.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 5.0,
        cpu_time_s: int = 5,
        memory_mb: int = 512,
        max_output_chars: int = 2000,
        isolate_network: bool = True,
    ) -> None:
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= 3600:
            raise ValueError(f"Expected timeout_s to be a number in (0, 3600], got {timeout_s!r}")
        check_int("cpu_time_s", cpu_time_s, 1)
        check_int("memory_mb", memory_mb, 64)
        check_int("max_output_chars", max_output_chars, 1)
        self.timeout_s = float(timeout_s)
        self.cpu_time_s = cpu_time_s
        self.memory_mb = memory_mb
        self.max_output_chars = max_output_chars
        self.isolate_network = isolate_network

    def _limit_child(self, unshare_network: bool, drop_user: bool) -> None:  # in the child, before exec
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_time_s, self.cpu_time_s))
        memory = self.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        size = 4 * self.max_output_chars + 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if unshare_network:
            ctypes.CDLL(None, use_errno=True).unshare(_CLONE_NEWNET)
        if drop_user:
            os.setgid(_NOBODY)
            os.setuid(_NOBODY)

    def run(self, code: str) -> SandboxResult:
        """Run `code` as a script in a fresh empty folder and return what it printed (the folder is then deleted)."""
        if not isinstance(code, str):
            raise TypeError(f"Expected code to be a str, got {type(code).__name__}")
        folder = tempfile.mkdtemp(prefix="textgen-python-")
        started = time.monotonic()
        try:
            script = Path(folder) / "main.py"
            script.write_text(code, encoding="utf-8")
            stdout_path, stderr_path = Path(folder) / ".stdout", Path(folder) / ".stderr"
            network_isolated = self.isolate_network and _platform_allows("unshare")
            drop_user = _platform_allows("drop_user")
            if drop_user:  # the child runs as nobody: give it its folder
                for path in (folder, script):
                    os.chown(path, _NOBODY, _NOBODY)
            with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
                process = subprocess.Popen(
                    [sys.executable, "-I", str(_CHILD), "main.py"],
                    cwd=folder,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env={"PATH": "/usr/bin:/bin", "HOME": folder, "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"},
                    start_new_session=True,
                    preexec_fn=lambda: self._limit_child(network_isolated, drop_user),
                )
                timed_out = False
                try:
                    returncode: int | None = process.wait(timeout=self.timeout_s)
                except subprocess.TimeoutExpired:
                    timed_out, returncode = True, None
                finally:
                    _kill_group(process)
            stdout, cut_out = _read_capped(stdout_path, self.max_output_chars)
            stderr = stderr_path.read_bytes().decode("utf-8", errors="replace")[-self.max_output_chars :]  # the end
            return SandboxResult(
                stdout=stdout,
                stderr=stderr,
                returncode=returncode,
                timed_out=timed_out,
                output_truncated=cut_out,
                network_isolated=network_isolated,
                seconds=time.monotonic() - started,
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # the folder this call made, with whatever the code wrote

    def __call__(self, code: str) -> str:
        return self.run(code).text()


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the child's whole session (it may have left children) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _read_capped(path: Path, limit: int) -> tuple[str, bool]:
    data = path.read_bytes()[: 4 * limit + 4]
    text = data.decode("utf-8", errors="replace")
    return text[:limit], len(text) > limit


_PROBES: dict[str, bool] = {}


def _platform_allows(feature: str) -> bool:
    """Whether this machine lets the sandbox ``unshare`` a network namespace, or ``drop_user`` to nobody and still
    run this interpreter (tried once each, in a throwaway child)."""
    if feature not in _PROBES:
        allowed = False
        if sys.platform.startswith("linux") and os.geteuid() == 0:
            if feature == "unshare":
                code = f"import ctypes,sys;sys.exit(ctypes.CDLL(None).unshare({_CLONE_NEWNET}) != 0)"
                command, user = [sys.executable, "-I", "-c", code], None
            else:
                command, user = [sys.executable, "-I", str(_CHILD)], _NOBODY  # reads the interpreter and child
            try:
                done = subprocess.run(command, timeout=60, capture_output=True, user=user, group=user, cwd="/")
                allowed = done.returncode == 0 if feature == "unshare" else b"IndexError" in done.stderr
            except (OSError, subprocess.SubprocessError):
                allowed = False
        _PROBES[feature] = allowed
    return _PROBES[feature]


def python_tool(sandbox: PythonSandbox | None = None) -> Tool:
    """The built-in ``python`` tool (argument ``code``; the result is what the code prints)."""
    runner = sandbox or PythonSandbox()
    return Tool(
        name="python",
        description="Runs a Python script in a sandbox and returns what it prints (use print). No network, no files "
        "outside its own empty folder, a few seconds of time.",
        parameters={
            "type": "object",
            "properties": {"code": {"type": "string", "description": "a complete Python script"}},
            "required": ["code"],
        },
        fn=runner,
    )
