"""Crash-safe files and folders: the one atomic-replace helper, the recovery rule readers apply, appends that never
interleave, a run lock a killed process cannot leave stuck, and a fault-injection hook for the tests.

Every file or folder the package writes goes through `atomic_write` (files: written beside the target, flushed,
fsynced, renamed over it) or `atomic_folder` (folders: filled in a staging folder, then swapped in). A folder swap
takes two renames, so a kill between them leaves the previous version under ``.NAME.old`` and no ``NAME``:
`recover_folder` (called by every reader of such a folder) renames it back. Each complete folder carries a
``.complete`` marker written last, naming the folder's kind (``checkpoint``, ``export``, ...), so a half-filled
staging folder is never taken for a good one, and a folder the package did not write (no marker, or another kind's)
is never replaced without ``overwrite=True`` (`check_replaceable`).

Files inside a run folder (the run lock, appended logs) are opened without following a symbolic link and must be
regular files, so a link planted there cannot make a run truncate or append to a file elsewhere.

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
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock; appends and run locks are then best effort
    fcntl = None  # type: ignore[assignment]  # no fcntl on Windows: None marks it

__all__ = [
    "COMPLETE_MARKER",
    "RunLock",
    "RunLockedError",
    "append_line",
    "atomic_folder",
    "atomic_write",
    "atomic_write_json",
    "check_replaceable",
    "fault_point",
    "folder_kind",
    "open_regular_file",
    "recover_folder",
    "retired_folder",
]

PathLike = str | os.PathLike[str]
COMPLETE_MARKER = ".complete"
"""File written last into a staged folder: its presence means every other file of the folder is complete; its text is
the folder's kind (empty in folders written before kinds were recorded)."""
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # Windows has none (and no symlinks without privileges)
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


def folder_kind(folder: PathLike) -> str | None:
    """The kind named by `folder`'s ``.complete`` marker ("" for a marker written before kinds), None without one."""
    marker = Path(folder) / COMPLETE_MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        return marker.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def check_replaceable(target: PathLike, kind: str, *, overwrite: bool = False) -> None:
    """Raise FileExistsError unless `atomic_folder` may replace `target` without deleting anything it did not write.

    Replaceable: a missing path, an empty folder, or a complete folder of this `kind` that the package wrote (its
    ``.complete`` marker names the kind, or is empty: written before kinds were recorded). Anything else (a user's
    folder, a file, a symbolic link, a folder of another kind) is refused unless `overwrite` is True, so callers
    check before any work starts.
    """
    target = Path(target)
    if overwrite or not os.path.lexists(target):
        return
    remedy = "choose another output folder, or replace it deliberately with --overwrite (overwrite=True)"
    if target.is_symlink() or not target.is_dir():
        what = "a symbolic link" if target.is_symlink() else "a file"
        raise FileExistsError(f"Expected {str(target)!r} to be a {kind} folder or missing, got {what}; {remedy}")
    found = folder_kind(target)
    if found is None:
        entries = sorted(os.listdir(target))
        if not entries:
            return
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise FileExistsError(
            f"Expected {str(target)!r} to be empty or a {kind} folder this package wrote (with its {COMPLETE_MARKER} "
            f"marker), got a folder it did not write, holding {shown}; {remedy}"
        )
    if found not in ("", kind):
        raise FileExistsError(f"Expected {str(target)!r} to be a {kind} folder, got a {found} folder; {remedy}")


def _remove(path: Path) -> None:
    """Delete a retired copy: a folder with its contents, a file or a link itself (never what a link points to)."""
    if path.is_symlink() or path.is_file():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


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
def atomic_folder(target: PathLike, *, name: str = "folder", overwrite: bool = False) -> Iterator[Path]:
    """Fill a staging folder (yielded) and swap it in for `target` when the block ends without an error.

    `name` is the folder's kind, written into its ``.complete`` marker, and labels the fault points of this swap
    (``{name}:staged`` before the renames, ``{name}:retired`` between them), for the fault-injection tests. An
    existing `target` that the package did not write as a `name` folder is refused (`check_replaceable`, before the
    block runs) unless `overwrite` is True.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(target)
    check_replaceable(target, name, overwrite=overwrite)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        os.chmod(staging, 0o777 & ~_umask())  # as a plain mkdir would make it, not mkdtemp's 0700
        yield staging
        (staging / COMPLETE_MARKER).write_text(name, encoding="utf-8")
        for file in staging.rglob("*"):
            if file.is_file():
                with open(file, "rb") as stream:
                    os.fsync(stream.fileno())
        fault_point(f"{name}:staged")
        retired = retired_folder(target)
        if os.path.lexists(target):
            _remove(retired)
            os.replace(target, retired)
            fault_point(f"{name}:retired")
        os.replace(staging, target)
        _fsync_directory(target.parent)
        _remove(retired)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def open_regular_file(path: PathLike, flags: int, purpose: str) -> int:
    """``os.open`` of a regular file that is not a symbolic link (created if `flags` say so); else OSError.

    `purpose` names the file in the error (``"the run lock"``). A link planted at `path` would otherwise make the
    caller truncate or append to whatever it points at.
    """
    try:
        handle = os.open(path, flags | _NOFOLLOW, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP or os.path.islink(path):
            raise OSError(
                errno.ELOOP,
                f"Expected {purpose} {str(path)!r} to be a regular file, got a symbolic link; remove the link",
            ) from None
        raise
    mode = os.fstat(handle).st_mode
    if not stat.S_ISREG(mode):
        os.close(handle)
        raise OSError(
            errno.EINVAL, f"Expected {purpose} {str(path)!r} to be a regular file, got mode {stat.filemode(mode)}"
        )
    return handle


def append_line(path: PathLike, line: str) -> None:
    """Append one line to a log and force it to disk before returning.

    The line goes out in one ``write`` under an exclusive ``flock``, so appends from several processes never
    interleave within a line; a last line that a crash cut short is first ended, so the new one stands alone. The
    log must be a regular file, not a symbolic link (`open_regular_file`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not os.path.lexists(path)
    payload = (line.rstrip("\n") + "\n").encode("utf-8")
    handle = open_regular_file(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, "the log")
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


class RunLockedError(RuntimeError):
    """Another process holds the run lock of the output folder."""


class RunLock:
    """An exclusive lock on an output folder, held while a run writes it (``with RunLock(folder): ...``).

    It is an ``flock`` on ``folder/.lock``: the kernel releases it when the holder exits in any way, SIGKILL
    included, so a killed run never leaves it stuck. The file keeps the holder's pid for the error message; it is
    opened without following a symbolic link and must be a regular file (a planted link is refused, its target
    never truncated).
    """

    def __init__(self, folder: PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / ".lock"
        self._handle: int | None = None

    def acquire(self) -> RunLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open_regular_file(self.path, os.O_RDWR | os.O_CREAT, "the run lock")
        try:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = os.pread(handle, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(handle)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunLockedError(
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
