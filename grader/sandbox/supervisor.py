"""The host side of every sandbox run: one poll loop for all backends, and cancel-all.

A backend starts its sandbox and hands `supervise` two callables (is it still running, kill it).
The loop enforces the wall clock and the disk limit on the host folders the sandbox writes to,
and stops at once when `cancel_all` is called (Ctrl-C, SIGTERM), whichever thread runs it.

Folders a submission wrote are walked and removed without recursion: a chain of thousands of
nested directories must not be able to crash the grader.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.protocol import read_progress

POLL_SECONDS = 0.2
# Walking a folder the submission filled stops here: past this many entries it is over any sane limit anyway.
MAX_ENTRIES_WALKED = 200_000
MAX_DEPTH = 64
UNLIMITED = 2**62
_DIRECTORY_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_DIR_FD_WORKS = {os.open, os.rmdir, os.unlink, os.rename} <= os.supports_dir_fd and os.scandir in os.supports_fd

_cancelled = threading.Event()


def cancel_all() -> None:
    """Every running sandbox of every backend is killed within one poll; new runs stop before they start."""
    _cancelled.set()


def cancelled() -> bool:
    return _cancelled.is_set()


def reset_cancel() -> None:
    """For a process that grades again after an interrupted run (tests, a long-lived caller)."""
    _cancelled.clear()


@dataclass
class Verdict:
    """Why the loop stopped the sandbox, if it did; none set means the sandbox exited by itself."""

    timed_out: bool = False
    import_timed_out: float | None = None  # the import limit that importing model.py ran past
    overflow: str | None = None
    cancelled: bool = False
    seconds: float = 0.0


def supervise(
    *,
    running: Callable[[], bool],
    kill: Callable[[], None],
    wall_clock_seconds: float,
    disk_mb: int,
    watched: list[Path],
) -> Verdict:
    """Waits for the sandbox to end; kills it on timeout, on too much output, or on cancel-all.

    Besides the wall clock, the import limit the runner states in progress.json while it imports model.py
    (the output folder is one of `watched`) is timed by this clock, from when that phase is first seen.
    """
    started = time.monotonic()
    verdict = Verdict()
    import_clock = _ImportClock(watched)
    while running():
        if _cancelled.is_set():
            verdict.cancelled = True
        elif time.monotonic() - started > wall_clock_seconds:
            verdict.timed_out = True
        elif (limit := import_clock.overrun()) is not None:
            verdict.import_timed_out = limit
        else:
            written = bytes_under(*watched)
            if written >= UNLIMITED:
                verdict.overflow = (
                    f"filled its folders with more than {MAX_ENTRIES_WALKED} entries or folders nested more than "
                    f"{MAX_DEPTH} levels deep"
                )
            elif written > disk_mb * 2**20:
                verdict.overflow = f"wrote {written // 2**20} MB, more than the {disk_mb} MB disk limit"
        if verdict.cancelled or verdict.timed_out or verdict.import_timed_out is not None or verdict.overflow:
            kill()
            break
        _cancelled.wait(POLL_SECONDS)
    verdict.seconds = time.monotonic() - started
    return verdict


class _ImportClock:
    """How long the runner has been importing model.py, by the host's clock, against the limit it was given."""

    def __init__(self, watched: list[Path]) -> None:
        self.folders = [path for path in watched if path.is_dir()]
        self.since: float | None = None
        self.limit = 0.0

    def overrun(self) -> float | None:
        """The import limit when importing has run past it, else None."""
        progress = next((found for folder in self.folders if (found := read_progress(folder))), None)
        if progress is None:  # not written yet, or caught half-written: nothing new
            return None if self.since is None else self._check(self.limit)
        limit = progress.get("limit_s")
        if progress.get("phase") != "importing" or not isinstance(limit, (int, float)) or limit <= 0:
            self.since = None
            return None
        self.since = self.since if self.since is not None else time.monotonic()
        self.limit = float(limit)
        return self._check(self.limit)

    def _check(self, limit: float) -> float | None:
        return limit if time.monotonic() - self.since > limit else None


def bytes_under(*paths: Path) -> int:
    """Sizes of the files under each path, symlinks not followed.

    Walked through directory descriptors with an explicit stack, so neither a deep chain of
    folders nor a path longer than the OS allows can stop it. Past MAX_DEPTH levels the size
    counts as unlimited: no honest run nests its output that deep.
    """
    total = 0
    for path in paths:
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode):
            total += info.st_size
            continue
        total += _bytes_in_folder(str(path))
    return total


def _bytes_in_folder(path: str) -> int:
    total, seen = 0, 0
    try:
        stack = [(os.open(path, _DIRECTORY_FLAGS), 0)]
    except OSError:
        return 0
    try:
        while stack:
            fd, depth = stack.pop()
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        seen += 1
                        if seen > MAX_ENTRIES_WALKED:
                            return UNLIMITED
                        if entry.is_dir(follow_symlinks=False):
                            if depth + 1 > MAX_DEPTH:
                                return UNLIMITED
                            with contextlib.suppress(OSError):
                                stack.append((os.open(entry.name, _DIRECTORY_FLAGS, dir_fd=fd), depth + 1))
                        else:
                            with contextlib.suppress(OSError):
                                total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                pass
            finally:
                os.close(fd)
    finally:
        for fd, _ in stack:
            os.close(fd)
    return total


def remove_tree(root: Path) -> None:
    """Removes a folder whatever a submission left in it: any depth, any modes, symlinks (never followed).

    Each pass empties the top folder's subfolders and moves their own subfolders up into the top
    folder, so no pass goes deeper than two levels, whatever the depth of the tree.
    """
    root_path = str(root)
    if not os.path.lexists(root_path):
        return
    if not _DIR_FD_WORKS or not os.path.isdir(root_path) or os.path.islink(root_path):
        shutil.rmtree(root_path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(root_path)
        return
    with contextlib.suppress(OSError):
        os.chmod(root_path, 0o700)
    try:
        top = os.open(root_path, _DIRECTORY_FLAGS)
    except OSError:
        return
    hoisted = 0
    try:
        while True:
            with os.scandir(top) as entries:
                names = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
            if not names:
                break
            for name, is_dir in names:
                if is_dir:
                    hoisted = _empty_folder_one_level(top, name, hoisted)
                    with contextlib.suppress(OSError):
                        os.rmdir(name, dir_fd=top)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(name, dir_fd=top)
            if all(os.path.lexists(os.path.join(root_path, name)) for name, _ in names):
                break  # nothing could be removed this pass (not ours to remove): stop rather than spin
    finally:
        os.close(top)
    with contextlib.suppress(OSError):
        os.rmdir(root_path)


def _empty_folder_one_level(top: int, name: str, hoisted: int) -> int:
    """Deletes the files of top/name and moves its subfolders up into top under fresh names."""
    with contextlib.suppress(OSError):
        os.chmod(name, 0o700, dir_fd=top)
    try:
        folder = os.open(name, _DIRECTORY_FLAGS, dir_fd=top)
    except OSError:
        return hoisted
    try:
        with os.scandir(folder) as entries:
            children = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
        for child, is_dir in children:
            if not is_dir:
                with contextlib.suppress(OSError):
                    os.unlink(child, dir_fd=folder)
                continue
            for _ in range(100):
                hoisted += 1
                try:
                    os.rename(child, f".removing-{hoisted}", src_dir_fd=folder, dst_dir_fd=top)
                    break
                except FileExistsError:
                    continue
                except OSError as error:
                    if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        break
    except OSError:
        pass
    finally:
        os.close(folder)
    return hoisted


def read_tail(path: Path, limit: int = 64 * 1024) -> bytes:
    """The last `limit` bytes of a log the sandbox wrote; nothing when it is gone."""
    try:
        with open(path, "rb") as stream:
            stream.seek(max(0, path.stat().st_size - limit))
            return stream.read()
    except OSError:
        return b""
