"""Limits the host puts on a local sandbox before it starts: rlimits, a pids cgroup for root, the launcher.

The grader never forks itself to set them: launch.py, a small single-threaded process, applies them and
then becomes the sandbox command.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

from grader.sandbox.protocol import SandboxLimits

LAUNCH_PATH = Path(__file__).with_name("launch.py")


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def launcher(settings: dict, command: list[str]) -> list[str]:
    """`command` behind the launcher, which applies `settings` (launch.py says which) in a fresh process."""
    return [sys.executable, "-I", "-S", str(LAUNCH_PATH), json.dumps(settings), "--", *command]


def _tasks_of_current_user() -> int | None:
    """Processes and threads this user already runs: RLIMIT_NPROC counts them all, not just the sandbox's.

    None where there is no /proc to count them (macOS): then no process limit is set rather than a wrong one.
    """
    if not Path("/proc").is_dir():
        return None
    uid, count = os.getuid(), 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                count += len(os.listdir(entry / "task"))
        except OSError:
            pass
    return count


def sandbox_rlimits(limits: SandboxLimits, memory: bool) -> dict[str, int]:
    mb = 2**20
    # No POSIX message queues: their bytes are another place outside the disk and memory limits.
    rlimits = {"RLIMIT_CPU": limits.cpu_seconds, "RLIMIT_FSIZE": limits.file_size_mb * mb, "RLIMIT_CORE": 0}
    rlimits["RLIMIT_MSGQUEUE"] = 0
    user_tasks = None if is_root() else _tasks_of_current_user()
    if user_tasks is not None:
        rlimits["RLIMIT_NPROC"] = user_tasks + limits.processes
    if memory:
        # Counts what the process allocates, not the gigabytes of address space torch's libraries reserve.
        rlimits["RLIMIT_DATA"] = limits.memory_mb * mb
    return rlimits


class PidsCgroup:
    """A pids cgroup capping one run's processes. Root needs it: RLIMIT_NPROC never applies to root."""

    V1_ROOT, V2_ROOT = Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")

    def __init__(self, limit: int) -> None:
        self.path: Path | None = None
        roots = []
        if (self.V1_ROOT / "cgroup.procs").exists():
            roots.append(self.V1_ROOT)
        if "pids" in _read(self.V2_ROOT / "cgroup.controllers"):
            with contextlib.suppress(OSError):
                (self.V2_ROOT / "cgroup.subtree_control").write_text("+pids")
            roots.append(self.V2_ROOT)
        for root in roots:
            try:
                path = root / f"grader-{os.getpid()}-{time.monotonic_ns()}"
                path.mkdir()
                (path / "pids.max").write_text(str(limit))
                self.path = path
                return
            except OSError:
                continue

    def remove(self) -> None:
        """Kills whatever is left in the group (the first kill of a namespace's init takes the rest) and removes it."""
        if not self.path:
            return
        for _ in range(200):
            for pid in _read(self.path / "cgroup.procs").split():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(pid), signal.SIGKILL)
            try:
                self.path.rmdir()
                self.path = None
                return
            except OSError:
                time.sleep(0.05)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
