"""The first code a sandboxed `python` tool process runs: it installs a refusing audit hook, then runs the user's code.

Run as ``python -I sandbox_child.py main.py`` inside the sandbox's empty working folder (see
`textgen_env.tools.python_sandbox`). The audit hook (PEP 578) refuses, with ``PermissionError``: writing, creating,
renaming or deleting files outside the working folder; starting processes (fork, exec, spawn, subprocess,
os.system); sockets; calling C through ctypes (importing it is allowed: numpy does); and adding other hooks.
Reading files is allowed. An audit hook is not a security boundary against native code; the OS limits set by the
parent (CPU time, memory, file size, a network namespace, an unprivileged user where possible) are the second line.
"""

from __future__ import annotations

import os
import runpy
import sys

_ROOT = os.path.realpath(os.getcwd())
_PATH_EVENTS = {
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.replace": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (0, 1),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.truncate": (0,),
    "os.utime": (0,),
    "shutil.rmtree": (0,),
    "shutil.copyfile": (1,),
    "shutil.move": (1,),
}
_REFUSED_PREFIXES = ("os.exec", "os.spawn", "os.posix_spawn", "socket.", "subprocess.", "pty.")
_REFUSED = {"os.system", "os.fork", "os.forkpty", "os.kill", "os.killpg", "sys.addaudithook", "os.startfile"}
# ctypes may be imported (numpy does) but not used to call C functions or read raw memory
_REFUSED |= {"ctypes.dlsym", "ctypes.call_function", "ctypes.cdata", "ctypes.string_at", "ctypes.wstring_at"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _inside(path: object) -> bool:
    if isinstance(path, int):  # an already open descriptor
        return True
    try:
        target = os.path.realpath(os.fsdecode(path))  # type: ignore[arg-type]  # str, bytes or PathLike here
    except (TypeError, ValueError):
        return False
    return target == _ROOT or target.startswith(_ROOT + os.sep)


def _hook(event: str, args: tuple) -> None:
    if event in _REFUSED or event.startswith(_REFUSED_PREFIXES):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open":
        path, mode, flags = args
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(flags & _WRITE_FLAGS)
        if writes and not _inside(path):
            raise PermissionError(f"sandbox: writing outside the working folder is not allowed: {path!r}")
        return
    positions = _PATH_EVENTS.get(event)
    if positions is not None:
        for index in positions:
            if index < len(args) and not _inside(args[index]):
                raise PermissionError(f"sandbox: {event} outside the working folder is not allowed: {args[index]!r}")


def main() -> None:
    script = sys.argv[1]
    sys.argv = [script]
    sys.path.insert(0, _ROOT)
    sys.addaudithook(_hook)
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
