"""Crash-safe writes (`textgen_env.storage`): atomic files and folders, recovery from every state a kill between the
steps of a swap leaves, appends from several processes that never interleave, and a lock a killed holder frees."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from textgen_env.storage import (
    COMPLETE_MARKER,
    RunLock,
    append_line,
    atomic_folder,
    atomic_write,
    atomic_write_json,
    check_replaceable,
    folder_kind,
    recover_folder,
    retired_folder,
)


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    path = atomic_write(tmp_path / "a" / "file.txt", "first")
    atomic_write(path, b"second")
    atomic_write_json(tmp_path / "data.json", {"x": [1, 2]})
    atomic_write(tmp_path / "written.bin", lambda p: p.write_bytes(b"by a writer"))
    assert path.read_text() == "second" and json.loads((tmp_path / "data.json").read_text()) == {"x": [1, 2]}
    assert (tmp_path / "written.bin").read_bytes() == b"by a writer"
    with pytest.raises(RuntimeError):
        atomic_write(path, lambda p: (_ for _ in ()).throw(RuntimeError("writer failed")))
    assert path.read_text() == "second"  # a failed write keeps the old file
    assert sorted(p.name for p in tmp_path.rglob("*") if p.name.startswith(".")) == []


@pytest.mark.parametrize("umask", [0o022, 0o077], ids=["umask-022", "umask-077"])
def test_written_files_and_folders_get_the_permissions_the_umask_gives(tmp_path, umask):
    previous = os.umask(umask)
    try:
        file = atomic_write(tmp_path / "report.json", "{}")
        with atomic_folder(tmp_path / "model") as staging:
            (staging / "config.json").write_text("{}")
        plain = tmp_path / "plain"
        plain.mkdir()
        (plain / "file").write_text("")
    finally:
        os.umask(previous)
    assert file.stat().st_mode & 0o777 == (plain / "file").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "model").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o777 & ~umask


def _folder(tmp_path, text: str):
    with atomic_folder(tmp_path / "ckpt") as staging:
        (staging / "data.txt").write_text(text)
    return tmp_path / "ckpt"


def test_atomic_folder_swaps_in_complete_folders(tmp_path):
    target = _folder(tmp_path, "v1")
    _folder(tmp_path, "v2")
    assert (target / "data.txt").read_text() == "v2" and (target / COMPLETE_MARKER).is_file()
    with pytest.raises(ValueError), atomic_folder(target) as staging:
        (staging / "data.txt").write_text("v3, half")
        raise ValueError("the writer failed")
    assert (target / "data.txt").read_text() == "v2"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no staging or retired folders left


@pytest.mark.parametrize(
    "state",
    ["between-renames", "incomplete-target", "leftover-retired"],
)
def test_recover_folder_from_every_state_a_kill_leaves(tmp_path, state):
    target = _folder(tmp_path, "v1")
    retired = retired_folder(target)
    if state == "between-renames":  # the old version moved aside, the new one not yet in place
        os.replace(target, retired)
        expected = "v1"
    elif state == "incomplete-target":  # a target without its marker beside an intact retired copy
        os.replace(target, retired)
        target.mkdir()
        (target / "data.txt").write_text("partial")
        expected = "v1"
    else:  # the swap finished but the retired copy was not yet removed
        retired.mkdir()
        (retired / "data.txt").write_text("v0")
        (retired / COMPLETE_MARKER).write_text("")
        expected = "v1"
    assert recover_folder(target) == target
    assert (target / "data.txt").read_text() == expected and not retired.exists()
    assert recover_folder(tmp_path / "missing") is None


def _append_many(path: str, tag: str, count: int) -> None:
    for i in range(count):
        append_line(path, json.dumps({"writer": tag, "i": i, "padding": tag * 2000}))


def test_appends_from_two_processes_never_interleave(tmp_path):
    path = tmp_path / "log.jsonl"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(path), tag, 150)) for tag in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    lines = path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one whole record
    assert len(records) == 300
    for tag in "ab":
        assert [r["i"] for r in records if r["writer"] == tag] == list(range(150))


def test_append_after_a_cut_line_starts_a_new_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"a": 1}\n{"b": ')  # a crash cut the last record short
    append_line(path, '{"c": 3}')
    assert path.read_text().splitlines() == ['{"a": 1}', '{"b": ', '{"c": 3}']


def test_a_second_holder_is_refused_and_a_killed_holder_frees_the_lock(tmp_path):
    with RunLock(tmp_path), pytest.raises(RuntimeError, match=r"Expected no other run writing .*pid \d+"):
        RunLock(tmp_path).acquire()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from textgen_env.storage import RunLock
                RunLock({str(tmp_path)!r}).acquire()
                print("held", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RuntimeError, match=f"pid {holder.pid}"):
        RunLock(tmp_path).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    RunLock(tmp_path).acquire().release()  # the kernel dropped the dead holder's lock


@pytest.mark.parametrize(
    ("kill_at", "survived"),
    [("job:step", 0), ("job:step:2", 1), ("job:step:3", 2), ("job", 3), ("other:step", 3)],
    ids=["first-passage", "second-passage", "third-passage", "prefix-only", "other-point"],
)
def test_fault_point_kills_at_the_named_passage(kill_at, survived, monkeypatch):
    """The real SIGKILL is what tests/agents/test_crash_safety.py uses; here the kill is recorded instead."""
    import textgen_env.storage as storage

    kills = []
    monkeypatch.setenv(storage.KILL_AT_VARIABLE, kill_at)
    monkeypatch.setattr(storage, "_passages", {})
    monkeypatch.setattr(storage.os, "kill", lambda pid, sig: kills.append((pid, sig)))
    passed = 0
    for _ in range(3):
        storage.fault_point("job:step")
        if kills:
            break
        passed += 1
    assert passed == survived
    assert kills == ([] if survived == 3 else [(os.getpid(), signal.SIGKILL)])


def _user_project(folder):
    """A folder the package did not write: a user's notes and sources."""
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "main.py").write_text("print('mine')\n")
    (folder / "notes.txt").write_text("my notes\n")
    return folder


def _assert_untouched(folder):
    assert (folder / "notes.txt").read_text() == "my notes\n"
    assert (folder / "src" / "main.py").read_text() == "print('mine')\n"
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no staging or retired copies


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (_user_project, r"got a folder it did not write, holding notes.txt, src; choose another .*--overwrite"),
        (lambda f: (f.mkdir(), (f / COMPLETE_MARKER).write_text("reward-model")), r"got a reward-model folder"),
        (lambda f: f.write_text("a file"), r"to be a checkpoint folder or missing, got a file"),
    ],
    ids=["user-folder", "other-kind", "file"],
)
def test_atomic_folder_refuses_to_replace_what_the_package_did_not_write(tmp_path, setup, message):
    target = tmp_path / "out"
    setup(target)
    ran = []
    with pytest.raises(FileExistsError, match=message), atomic_folder(target, name="checkpoint") as staging:
        ran.append(staging)  # never reached: the refusal comes before the block's work
    assert ran == [] and os.path.lexists(target)
    if (target / "notes.txt").exists():
        _assert_untouched(target)


def test_atomic_folder_replaces_its_own_kind_an_empty_folder_and_with_overwrite_anything(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    with atomic_folder(target, name="checkpoint") as staging:  # empty: nothing to lose
        (staging / "data.txt").write_text("v1")
    assert folder_kind(target) == "checkpoint"
    with atomic_folder(target, name="checkpoint") as staging:
        (staging / "data.txt").write_text("v2")
    (target / COMPLETE_MARKER).write_text("")  # a folder written before markers named their kind
    with atomic_folder(target, name="checkpoint") as staging:
        (staging / "data.txt").write_text("v3")
    assert (target / "data.txt").read_text() == "v3"
    other = _user_project(tmp_path / "project")
    check_replaceable(other, "checkpoint", overwrite=True)
    with atomic_folder(other, name="checkpoint", overwrite=True) as staging:
        (staging / "data.txt").write_text("deliberate")
    assert sorted(p.name for p in other.iterdir()) == [COMPLETE_MARKER, "data.txt"]


def test_a_symlinked_lock_is_refused_and_its_target_not_truncated(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("the user's file\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to(precious)
    with pytest.raises(OSError, match=r"Expected the run lock .*\.lock' to be a regular file, got a symbolic link"):
        RunLock(run).acquire()
    assert precious.read_text() == "the user's file\n"


def test_appends_refuse_a_symbolic_link_and_anything_but_a_regular_file(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("the user's file\n")
    (tmp_path / "progress.csv").symlink_to(precious)
    with pytest.raises(OSError, match=r"Expected the log .*progress.csv' to be a regular file, got a symbolic link"):
        append_line(tmp_path / "progress.csv", "iteration,reward")
    assert precious.read_text() == "the user's file\n"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError, match=r"Expected the log .*fifo' to be a regular file, got mode p"):
        append_line(tmp_path / "fifo", "x")
