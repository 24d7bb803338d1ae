"""Crash-safe files and folders: the one atomic-replace helper, the recovery rule readers apply, appends that never
interleave, a run lock a killed process cannot leave stuck, and a fault-injection hook for the tests.

Every file or folder the package writes goes through `atomic_write` (files: written beside the target, flushed,
fsynced, renamed over it) or `atomic_folder` (folders: filled in a staging folder, then swapped in). A folder swap
takes two renames, so a kill between them leaves the previous version under ``.NAME.old`` and no ``NAME``:
`recover_folder` (called by every reader of such a folder) renames it back. Each complete folder carries a
``.complete`` marker written last, so a half-filled staging folder is never taken for a good one.

Set ``TEXTGEN_ENV_KILL_AT=point`` (or ``point:N`` for its N-th passage) and the process SIGKILLs itself when it
reaches `fault_point(point)`: how the fault-injection tests kill a run at exact moments.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock; appends and run locks are then best effort
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "COMPLETE_MARKER",
    "RunLock",
    "append_line",
    "atomic_folder",
    "atomic_write",
    "atomic_write_json",
    "fault_point",
    "recover_folder",
    "retired_folder",
]

PathLike = str | os.PathLike[str]
COMPLETE_MARKER = ".complete"
"""File written last into a staged folder: its presence means every other file of the folder is complete."""
KILL_AT_VARIABLE = "TEXTGEN_ENV_KILL_AT"
_passages: dict[str, int] = {}


def fault_point(name: str) -> None:
    """SIGKILL this process here when ``TEXTGEN_ENV_KILL_AT`` names this point (``name`` or ``name:N``)."""
    wanted = os.environ.get(KILL_AT_VARIABLE)
    if not wanted:
        return
    point, _, count = wanted.rpartition(":")
    if not count.isdigit():  # no passage number: the whole value names the point
        point, count = wanted, "1"
    if point != name:
        return
    _passages[name] = _passages.get(name, 0) + 1
    if _passages[name] >= int(count):
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_directory(folder: Path) -> None:
    """Make renames and new entries in `folder` durable (not possible on every platform)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(handle)
    finally:
        os.close(handle)


def _umask() -> int:
    """The process's umask (read by setting it and putting it back; Python has no getter before 3.14)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def atomic_write(path: PathLike, data: bytes | str | Callable[[Path], None]) -> Path:
    """Replace the file `path` atomically: readers see the old file or the new one, never a part.

    Args:
        path: the file to write.
        data: its bytes or text (UTF-8), or a function that writes the file at the path it is given (for writers
            such as ``torch.save`` that take a path).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 would hide reports from other users
        if callable(data):
            os.close(handle)
            data(Path(temporary))
            with open(temporary, "rb+") as stream:
                os.fsync(stream.fileno())
        else:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data.encode("utf-8") if isinstance(data, str) else data)
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)
    return path


def atomic_write_json(path: PathLike, data: Any) -> Path:
    """`atomic_write` of `data` as indented UTF-8 JSON."""
    return atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False))


def retired_folder(target: PathLike) -> Path:
    """Where `atomic_folder` keeps the previous version of `target` between its two renames."""
    target = Path(target)
    return target.with_name(f".{target.name}.old")


def _complete(folder: Path) -> bool:
    return (folder / COMPLETE_MARKER).is_file()


def recover_folder(target: PathLike) -> Path | None:
    """The recovery rule for a folder written by `atomic_folder`: the complete version of `target`, or None.

    A kill between the two renames of a swap leaves the previous version in `retired_folder` and no `target`: it
    is renamed back. A retired copy beside a complete `target` is a finished swap's leftover and is removed.
    """
    target, retired = Path(target), retired_folder(target)
    if _complete(target):
        if retired.exists():
            shutil.rmtree(retired, ignore_errors=True)
        return target
    if _complete(retired):
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)  # an incomplete folder is never a version to keep
        os.replace(retired, target)
        _fsync_directory(target.parent)
        return target
    return None


@contextlib.contextmanager
def atomic_folder(target: PathLike, *, name: str = "folder") -> Iterator[Path]:
    """Fill a staging folder (yielded) and swap it in for `target` when the block ends without an error.

    `name` labels the fault points of this swap (``{name}:staged`` before the renames, ``{name}:retired`` between
    them), for the fault-injection tests.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        os.chmod(staging, 0o777 & ~_umask())  # as a plain mkdir would make it, not mkdtemp's 0700
        yield staging
        (staging / COMPLETE_MARKER).write_text("")
        for file in staging.rglob("*"):
            if file.is_file():
                with open(file, "rb") as stream:
                    os.fsync(stream.fileno())
        fault_point(f"{name}:staged")
        retired = retired_folder(target)
        if target.exists():
            shutil.rmtree(retired, ignore_errors=True)
            os.replace(target, retired)
            fault_point(f"{name}:retired")
        os.replace(staging, target)
        _fsync_directory(target.parent)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def append_line(path: PathLike, line: str) -> None:
    """Append one line to a log and force it to disk before returning.

    The line goes out in one ``write`` under an exclusive ``flock``, so appends from several processes never
    interleave within a line; a last line that a crash cut short is first ended, so the new one stands alone.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    payload = (line.rstrip("\n") + "\n").encode("utf-8")
    handle = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        size = os.fstat(handle).st_size
        if size and os.pread(handle, 1, size - 1) != b"\n":
            payload = b"\n" + payload
        os.write(handle, payload)
        os.fsync(handle)
    finally:
        os.close(handle)  # releases the lock
    if created:
        _fsync_directory(path.parent)


class RunLock:
    """An exclusive lock on an output folder, held while a run writes it (``with RunLock(folder): ...``).

    It is an ``flock`` on ``folder/.lock``: the kernel releases it when the holder exits in any way, SIGKILL
    included, so a killed run never leaves it stuck. The file keeps the holder's pid for the error message.
    """

    def __init__(self, folder: PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / ".lock"
        self._handle: int | None = None

    def acquire(self) -> RunLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = os.pread(handle, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(handle)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RuntimeError(
                    f"Expected no other run writing {str(self.folder)!r}, got one holding its lock (pid {holder}); "
                    "wait for it to finish or choose another --output"
                ) from None
            raise
        os.ftruncate(handle, 0)
        os.pwrite(handle, str(os.getpid()).encode(), 0)
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            os.close(self._handle)
            self._handle = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()
